"""The unmodified model's logits on each split, kept in the run directory.

Every readout is a difference from the baseline (the unmodified model's predictions), and the
gradient criterion picks each group's worst examples by their baseline loss, so the first
ranking or readout of a session starts with a full pass over the split. A run's own Stage I
already made that pass on its model; ``<run>/cache/baseline-<key>-<split>.pt`` keeps its logits
so the console, opening the run later, starts from them.

The key hashes what the logits depend on: the model's weights and buffers (bytes), the dataset
(its run-cache key), the evaluation settings that fix the batches (batch size, subsample order)
and the torch version; anything else reads nothing and recomputes. Writes are atomic; a file
that cannot be read is ignored.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import torch
from torch import nn

_FORMAT = 1


def model_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer (name, dtype, shape, bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


class BaselineStore:
    """Baseline logits of one model on one dataset, in ``run_dir/cache``."""

    def __init__(self, run_dir: Path, data_key: str):
        self.run_dir = Path(run_dir)
        self.data_key = data_key
        self._key: str | None = None

    def bind(self, model: nn.Module, settings: dict[str, object]) -> None:
        """Fix the key for ``model`` evaluated with ``settings`` (batch size, order, device)."""
        text = json.dumps(
            {
                "format": _FORMAT,
                "model": model_digest(model),
                "data": self.data_key,
                "torch": torch.__version__,
                "settings": settings,
            },
            sort_keys=True,
            default=str,
        )
        self._key = hashlib.sha256(text.encode()).hexdigest()[:20]

    def path(self, split: str) -> Path:
        assert self._key is not None, "bind the store to a model first"
        return self.run_dir / "cache" / f"baseline-{self._key}-{split}.pt"

    def read(self, split: str, rows: int) -> torch.Tensor | None:
        """The stored logits of ``split`` (split order), or None (none, damaged, wrong size)."""
        if self._key is None or not self.path(split).is_file():
            return None
        try:
            logits = torch.load(self.path(split), map_location="cpu", weights_only=True)
        except Exception:  # damaged or from another version: recomputed by the caller
            return None
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or len(logits) != rows:
            return None
        return logits.float()

    def write(self, split: str, logits: torch.Tensor) -> bool:
        """Keep ``logits`` (split order); False when the run folder is not writable."""
        from labconsole.engine.runs import atomic_write_bytes

        if self._key is None:
            return False
        buffer = io.BytesIO()
        torch.save(logits.detach().float().cpu().contiguous(), buffer)
        try:
            atomic_write_bytes(self.path(split), buffer.getvalue())
        except OSError:  # a read-only run folder only costs the next session a pass
            return False
        return True
