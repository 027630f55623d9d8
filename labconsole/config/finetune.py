"""[finetune]: Stage II — pruned-contrastive fine-tuning (SPEC §5)."""

from __future__ import annotations

from labconsole.config.base import Section


class FinetuneConfig(Section):
    """Filled in by the fine-tuning stage."""
