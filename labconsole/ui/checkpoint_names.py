"""How the console names a checkpoint: by its run and its name, not by a path too long to show."""

from __future__ import annotations


def run_dir_of(checkpoint: str) -> str:
    """The run directory a checkpoint file belongs to (a run directory is its own)."""
    head, sep, _ = checkpoint.rpartition("/checkpoints/")
    return head if sep else checkpoint


def checkpoint_label(checkpoint: str) -> str:
    """A checkpoint as the run it belongs to and its name (``<run>/best``), short enough for
    a form's narrow column; a file outside a run keeps its path."""
    head, sep, name = checkpoint.rpartition("/checkpoints/")
    if not sep:
        return checkpoint
    return f"{head.rsplit('/', 1)[-1]}/{name.removesuffix('.safetensors')}"
