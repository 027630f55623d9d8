"""[neurons]: Stage I — ranking critical neurons and reading out interventions (SPEC §2, §4)."""

from __future__ import annotations

from labconsole.config.base import Section


class NeuronsConfig(Section):
    """Filled in by the critical-neurons stage."""
