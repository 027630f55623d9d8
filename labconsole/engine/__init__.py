"""The engine: plain Python + torch. Never imports textual or rich (a test enforces it)."""
