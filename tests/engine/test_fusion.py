"""The folded graph's ReLUs computed in the conv kernel and residual sums in place: the same function."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stage1_fixtures import tiny_model, with_batchnorm_statistics

from labconsole.engine.stage1.folding import fold_batchnorm
from labconsole.engine.stage1.fusion import FusedConv2d, fuse_pointwise

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN")


def _fused_modules(graph: nn.Module) -> list[str]:
    return [name for name, m in graph.named_modules() if isinstance(m, FusedConv2d)]


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_the_fused_graph_computes_the_unfused_graph(layout: torch.memory_format) -> None:
    model = tiny_model()
    plain = fold_batchnorm(model, fuse=False)
    fused = fold_batchnorm(model)
    assert plain is not None and fused is not None
    names = _fused_modules(fused.graph)
    # Every conv followed by a ReLU, directly or through a residual sum computed before it.
    assert set(names) == {
        "conv1",
        "layer1.0.conv1",
        "layer1.0.conv2",  # + the identity shortcut
        "layer2.0.conv1",
        "layer2.0.downsample.0",  # + conv2's output, computed before it
        "layer3.0.conv1",
        "layer3.0.downsample.0",
    }
    x = torch.randn(10, 3, 16, 16).contiguous(memory_format=layout)
    with torch.inference_mode():
        assert torch.allclose(fused.graph(x), plain.graph(x), atol=1e-5)
        assert torch.allclose(fused.graph(x), model.eval()(x), atol=1e-5)


def test_a_torchvision_resnet_with_in_place_relus_and_iadd_is_fused_and_unchanged() -> None:
    import torchvision

    torch.manual_seed(0)
    model = with_batchnorm_statistics(
        torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=3)
    ).eval()
    fused = fold_batchnorm(model)
    assert fused is not None and "layer1.0.conv2" in _fused_modules(fused.graph)  # ``out += identity``
    x = torch.randn(4, 3, 40, 40)
    with torch.inference_mode():
        assert torch.allclose(fused.graph(x), model(x), atol=1e-4)


def test_weight_edits_of_the_folded_copy_reach_the_fused_kernel() -> None:
    fused = fold_batchnorm(tiny_model())
    plain = fold_batchnorm(tiny_model(), fuse=False)
    assert fused is not None and plain is not None
    x = torch.randn(6, 3, 16, 16)
    with torch.no_grad():
        for folded in (fused, plain):
            folded.module("layer1.0.conv1").weight[2].mul_(-3.0)
        assert torch.allclose(fused.graph(x), plain.graph(x), atol=1e-5)


class _SharedConv(nn.Module):
    """One conv module called twice: only one call is followed by a ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.relu(self.conv(x)))


class _BroadcastSum(nn.Module):
    """``relu(conv(x) + b)`` with a broadcast ``b``: it runs the plain ops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.shift = nn.Parameter(torch.randn(1, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shift = self.shift  # read before the conv: a summand computed before it is fused
        return torch.relu(self.conv(x) + shift)


def test_a_conv_called_twice_is_left_alone_and_a_broadcast_sum_runs_the_plain_ops() -> None:
    from labconsole.engine.stage1.fx_trace import symbolic_trace

    torch.manual_seed(0)
    x = torch.randn(3, 4, 8, 8)
    shared = _SharedConv().eval()
    graph = symbolic_trace(shared)
    assert fuse_pointwise(graph) == 0
    broadcast = _BroadcastSum().eval()
    graph = symbolic_trace(broadcast)
    assert fuse_pointwise(graph) == 1
    with torch.inference_mode():
        assert torch.allclose(graph(x), broadcast(x), atol=1e-6)
        assert torch.allclose(symbolic_trace(shared)(x), shared(x))
