"""Reading weight files into a model: ``.safetensors`` and legacy ``.pth`` / ``.pth.tar``.

Legacy state dicts may sit under ``model_state_dict``, ``state_dict``, ``model`` or at the top
level, with a ``module.`` prefix (DataParallel), and a ``Sequential(Linear, Softmax)`` head stored
as ``fc.0.*``. A ``.pth`` is read with ``torch.load(weights_only=True)``: tensors and plain
containers only. A file that pickles whole objects (an ``nn.Module``, an optimizer, custom classes)
needs full unpickling, which can run code from the file; that happens only with an explicit
``allow_pickle`` (preset key ``model.allow_pickle``).

This module imports neither the factory nor the checkpoint module: both build on it.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from labconsole.errors import CheckpointError

HEAD_PREFIXES = ("fc.", "head.")


def load_state_dict_file(path: Path, *, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Tensors by parameter name from a ``.safetensors`` or a legacy ``.pth`` file."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = _torch_load(path, allow_pickle=allow_pickle)
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from None
    return normalise_state_dict(obj, source=str(path))


def _torch_load(path: Path, *, allow_pickle: bool) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not allow_pickle:
            raise CheckpointError(
                f"{path}: this file stores more than tensors (whole pickled objects), so reading it "
                "means full unpickling, which can run code from the file. If you trust it, set "
                f"model.allow_pickle = true (or --set model.allow_pickle=true). Detail: {exc}"
            ) from None
    return torch.load(path, map_location="cpu", weights_only=False)


def normalise_state_dict(obj: object, *, source: str) -> dict[str, torch.Tensor]:
    """The plain ``{name: tensor}`` inside whatever a training script saved."""
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        for key in ("model_state_dict", "state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, (Mapping, nn.Module)):
                return normalise_state_dict(inner, source=source)
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise CheckpointError(
            f"{source}: expected a state dict (tensors by name, optionally under model_state_dict / state_dict / model)"
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        name = str(key).removeprefix("module.")
        # The authors' head is Sequential(Linear, Softmax): fc.0.* holds the Linear.
        for head in ("fc.0.", "head.0."):
            if name.startswith(head):
                name = head[:-2] + name[len(head) :]
        out[name] = value
    return out


def fit_state_dict(model: nn.Module, state: dict[str, torch.Tensor], *, source: str, skip_head: bool) -> None:
    """Load ``state`` into ``model`` or raise one message listing every mismatched key."""
    own = model.state_dict()
    if skip_head:
        state = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}
    missing = [k for k in own if k not in state and not (skip_head and k.startswith(HEAD_PREFIXES))]
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


def load_local_weights(model: nn.Module, path: Path, *, skip_head: bool, allow_pickle: bool = False) -> None:
    """Initial weights from a local file (e.g. ``resnet50-19c8e357.pth``); the head may differ."""
    if not path.exists():
        raise CheckpointError(f"weights file not found: {path}")
    state = load_state_dict_file(path, allow_pickle=allow_pickle)
    fit_state_dict(model, state, source=str(path), skip_head=skip_head)
