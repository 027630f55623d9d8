"""[rare]: Paper B — rare spurious correlations (SPEC §6)."""

from __future__ import annotations

from labconsole.config.base import Section


class RareConfig(Section):
    """Filled in by the rare-correlation lab."""
