"""Shared tiny model + embedded smoke data for the Stage I tests."""

from __future__ import annotations

import torch

from labconsole.config.data import DataConfig
from labconsole.config.neurons import NeuronsConfig
from labconsole.engine.data.registry import load_dataset
from labconsole.engine.models.factory import create_model
from labconsole.engine.stage1.session import Session

_BUNDLE = None


def tiny_bundle():
    global _BUNDLE
    if _BUNDLE is None:
        _BUNDLE = load_dataset(DataConfig().smoke())
    return _BUNDLE


def tiny_model(seed: int = 0, backbone: str = "cifar_resnet8") -> torch.nn.Module:
    torch.manual_seed(seed)
    return with_batchnorm_statistics(create_model(backbone, 2, width=8))


def with_batchnorm_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics (seeded by the caller), so that zeroing a filter before
    BN differs from after; the model in eval mode."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.bias.uniform_(-0.5, 0.5)
    return model.eval()


def tiny_session(seed: int = 0, **config) -> Session:
    return Session(
        tiny_model(seed), tiny_bundle(), "cpu", config=NeuronsConfig(**{"worst_samples": 24, "sampled": 12, **config})
    )


def state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(model: torch.nn.Module, saved: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


class StopAfter:
    """A cancel token that is set once ``count`` has been called ``n`` times (a walk's
    ``on_chunk``: the walk stops after ``n`` chunks)."""

    def __init__(self, n: int):
        self.n = n
        self.chunks = 0

    def is_set(self) -> bool:
        return self.chunks >= self.n

    def count(self) -> None:
        self.chunks += 1
