"""Checkpoints: ``<name>.safetensors`` + ``<name>.json`` sidecar (backbone, classes, dataset, preset).

Legacy ``.pth`` / ``.pth.tar`` state dicts import too: the weights may sit under
``model_state_dict``, ``state_dict``, ``model`` or at the top level, with a ``module.`` prefix
(DataParallel), and a ``Sequential(Linear, Softmax)`` head stored as ``fc.0.*``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labconsole.engine.runs import atomic_write_bytes, atomic_write_json
from labconsole.errors import CheckpointError

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
        return json.loads(sidecar.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{sidecar}: not valid JSON ({exc})") from None


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
    path_or_run: str | Path, device: torch.device | str = "cpu", *, expect: dict[str, Any] | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model described by the sidecar and load its weights.

    ``expect`` (e.g. ``{"backbone": "resnet50", "num_classes": 2}``) turns a checkpoint made for
    another architecture or dataset into one clear error instead of a shape mismatch later."""
    from labconsole.engine.models.factory import create_model

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
    fit_state_dict(model, load_state_dict_file(path), source=str(path), skip_head=False)
    return model.to(device), meta


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from None
    return normalise_state_dict(obj, source=str(path))


def normalise_state_dict(obj: Any, *, source: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for key in ("model_state_dict", "state_dict", "model"):
            if key in obj and isinstance(obj[key], (dict, nn.Module)):
                return normalise_state_dict(obj[key], source=source)
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{source}: expected a state dict (tensors by name, optionally under model_state_dict / state_dict / model)"
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        key = key.removeprefix("module.")
        # The authors' head is Sequential(Linear, Softmax): fc.0.* holds the Linear.
        for head in ("fc.0.", "head.0."):
            if key.startswith(head):
                key = head[:-2] + key[len(head) :]
        out[key] = value
    return out


def fit_state_dict(model: nn.Module, state: dict[str, torch.Tensor], *, source: str, skip_head: bool) -> None:
    """Load ``state`` into ``model`` or raise one message listing every mismatched key."""
    own = model.state_dict()
    head_prefixes = ("fc.", "head.")
    if skip_head:
        state = {k: v for k, v in state.items() if not k.startswith(head_prefixes)}
    missing = [k for k in own if k not in state and not (skip_head and k.startswith(head_prefixes))]
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shape = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in state
        if k in own and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shape:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shape)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", … ({len(keys)} in all)" if len(keys) > 8 else "")
                parts.append(f"{label}: {shown}")
        arch = getattr(model, "backbone_name", type(model).__name__)
        raise CheckpointError(f"{source} does not fit backbone {arch}: " + "; ".join(parts))
    model.load_state_dict(state, strict=False)


def sidecar_for(model: nn.Module, **meta: Any) -> dict[str, Any]:
    return {"backbone": getattr(model, "backbone_name", type(model).__name__), **meta}
