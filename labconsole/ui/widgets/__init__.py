"""Reusable widgets of the console (no engine imports)."""
