"""Preset sections: frozen pydantic models, one module per section.

Each section forbids unknown keys and knows how to shrink itself for ``--smoke``.
"""

from labconsole.config.base import Section

__all__ = ["Section"]
