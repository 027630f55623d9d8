"""Preset sections: frozen pydantic models, one module per section (``base.Section`` is their base).

Each section forbids unknown keys and knows how to shrink itself for ``--smoke``. ``vocab``
holds the names every option may take; it imports neither pydantic nor torch, so the console
can offer the same choices before either is loaded (this package imports nothing eagerly).
"""
