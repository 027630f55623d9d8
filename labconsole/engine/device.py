"""One way to turn a device setting into a ``torch.device``: "auto" takes the GPU when there is
one; asking for CUDA where there is none is a clear error, not a crash later."""

from __future__ import annotations

import torch

from labconsole.config.vocab import DEVICES
from labconsole.errors import UserError


def resolve_device(requested: str | torch.device) -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` (or a ``torch.device``) → a usable device."""
    text = str(requested) if isinstance(requested, torch.device) else requested.strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"device {text}: no CUDA device is available here (use cpu or auto)")
        device = torch.device(text)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return device
    if text == "cpu":
        return torch.device("cpu")
    raise UserError(f"device {requested!r}: expected one of {', '.join(DEVICES)} (or cuda:N)")
