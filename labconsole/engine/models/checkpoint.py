"""Checkpoints: ``<name>.safetensors`` + ``<name>.json`` sidecar (backbone, classes, dataset, preset).

Legacy ``.pth`` / ``.pth.tar`` state dicts import too (see ``weights``, which reads both kinds of
file; it is re-exported here for callers that load a checkpoint by hand).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labconsole.engine.models.factory import create_model
from labconsole.engine.models.weights import fit_state_dict, load_state_dict_file, normalise_state_dict
from labconsole.engine.runs import atomic_write_bytes, atomic_write_json
from labconsole.errors import CheckpointError

__all__ = [
    "fit_state_dict",
    "load_checkpoint",
    "load_state_dict_file",
    "normalise_state_dict",
    "read_sidecar",
    "resolve_checkpoint",
    "save_checkpoint",
    "sidecar_for",
]

SIDECAR_KEYS = ("backbone", "num_classes", "in_channels", "image_size", "width")


def save_checkpoint(path: Path, model: nn.Module, meta: dict[str, Any]) -> Path:
    """Write ``path`` (.safetensors) and its JSON sidecar atomically."""
    from safetensors.torch import save

    path = Path(path).with_suffix(".safetensors")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, save(state))
    atomic_write_json(path.with_suffix(".json"), meta)
    return path


def read_sidecar(path: Path) -> dict[str, Any]:
    sidecar = Path(path).with_suffix(".json")
    if not sidecar.exists():
        return {}
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{sidecar}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{sidecar}: expected a JSON object (backbone, num_classes, …)")
    return meta


def resolve_checkpoint(path_or_run: str | Path, which: str = "best") -> Path:
    """A checkpoint file, or a run directory (→ its ``checkpoints/<which>.safetensors``)."""
    path = Path(path_or_run).expanduser()
    if path.is_dir():
        for candidate in (
            path / "checkpoints" / f"{which}.safetensors",
            path / f"{which}.safetensors",
            path / "checkpoints" / "last.safetensors",
        ):
            if candidate.exists():
                return candidate
        raise CheckpointError(f"{path}: no checkpoints/{which}.safetensors in this run directory")
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    return path


def load_checkpoint(
    path_or_run: str | Path,
    device: torch.device | str = "cpu",
    *,
    expect: dict[str, Any] | None = None,
    allow_pickle: bool = False,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model described by the sidecar and load its weights.

    ``expect`` (e.g. ``{"backbone": "resnet50", "num_classes": 2}``) turns a checkpoint made for
    another architecture or dataset into one clear error instead of a shape mismatch later.
    ``allow_pickle`` lets a legacy ``.pth`` that pickles whole objects be unpickled in full."""
    path = resolve_checkpoint(path_or_run)
    meta = read_sidecar(path)
    if expect:
        wrong = {k: (meta.get(k), v) for k, v in expect.items() if v is not None and meta.get(k) not in (None, v)}
        if wrong:
            detail = ", ".join(f"{k}: checkpoint has {got!r}, expected {want!r}" for k, (got, want) in wrong.items())
            raise CheckpointError(f"{path} does not fit this run ({detail})")
        meta = {**expect, **{k: v for k, v in meta.items() if v is not None}}
    missing = [k for k in ("backbone", "num_classes") if k not in meta]
    if missing:
        raise CheckpointError(
            f"{path}: no JSON sidecar with {', '.join(missing)}; for a legacy .pth give the backbone "
            "in the preset (model.backbone) and model.checkpoint"
        )
    model = create_model(
        meta["backbone"],
        int(meta["num_classes"]),
        in_channels=int(meta.get("in_channels", 3)),
        image_size=int(meta.get("image_size", 32)),
        width=int(meta.get("width", 16)),
    )
    state = load_state_dict_file(path, allow_pickle=allow_pickle)
    fit_state_dict(model, state, source=str(path), skip_head=False)
    return model.to(device), meta


def sidecar_for(model: nn.Module, **meta: Any) -> dict[str, Any]:
    return {"backbone": getattr(model, "backbone_name", type(model).__name__), **meta}
