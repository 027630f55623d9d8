"""Eval fast path on the CPU: the ReLU after a folded conv computed inside the conv's kernel
(a oneDNN post-op), and a residual sum before it added in place into the conv's output, instead
of as passes of their own.

On a 2-core CPU a readout from an early cut is compute-bound in the convolutions; the
element-wise passes between them (ReLU, residual add) are another ~14 % of its time, spent
streaming activations through memory. ``fuse_pointwise`` rewrites the folded graph:

* ``relu(conv(x))`` → one ``FusedConv2d`` node computing both;
* ``relu(conv(x) + other)`` → one ``FusedConv2d`` node taking ``(x, other)``, the sum and the
  ReLU in place on the conv's fresh output, where ``other`` is computed before the conv: a
  residual block's identity shortcut, or, in a block with a shortcut conv (traced after the
  block's second conv), the second conv's output, summed into the shortcut conv's. Fusing the
  second conv instead would move it past the shortcut conv, and a readout cut at the shortcut
  conv (a cheap 1×1) would recompute the 3×3 as well.

The values are the same as the separate ops' (the ReLU and the sum apply to the conv's float32
result, in the same order); ``FusedConv2d`` keeps the conv's own ``weight`` and ``bias``
parameters, so weight edits of an intervention apply to it unchanged. Anything the kernel does
not take (another dtype, a broadcast ``other``, autograd) runs the plain ops instead.
"""

from __future__ import annotations

import functools
import operator
from collections import Counter
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

_RELU_FUNCTIONS = {F.relu, torch.relu, torch.relu_}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}


@functools.cache
def _pointwise_op() -> Any:
    """oneDNN's fused convolution (None in a build without it)."""
    if not torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call]
        return None
    return getattr(torch.ops.mkldnn, "_convolution_pointwise", None)


def _ints(value: object) -> list[int]:
    """A conv's stride / padding / dilation / kernel size as a list (``_pair`` tuples)."""
    assert isinstance(value, tuple)
    return [int(v) for v in value]


class FusedConv2d(nn.Conv2d):
    """``relu(conv(x))``, or ``relu(conv(x) + other)`` when called with ``other``, in one kernel."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,  # type: ignore[arg-type]
            conv.stride,  # type: ignore[arg-type]
            conv.padding,  # type: ignore[arg-type]
            conv.dilation,  # type: ignore[arg-type]
            conv.groups,
            bias=False,
            device="meta",
        )
        self.weight = conv.weight  # the same parameters: edits of the folded copy apply here
        self.bias = conv.bias

    def forward(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        return conv_relu(self, x, self.weight, self.bias, other)


def conv_relu(
    conv: nn.Conv2d,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    other: torch.Tensor | None = None,
) -> torch.Tensor:
    """``relu(conv2d(x, weight, bias) + other)`` (``other`` optional) with ``conv``'s stride,
    padding and dilation: the ReLU in the oneDNN kernel and the sum in place where that
    computes exactly the plain ops, else the plain ops."""
    op = _pointwise_op()
    if op is not None and _fused_kernel_takes(conv, x, weight, other):
        if other is None:
            args = (_ints(conv.padding), _ints(conv.stride), _ints(conv.dilation), conv.groups)
            fused: torch.Tensor = op(x, weight, bias, *args, "relu", [], "")
            return fused
        # oneDNN's own sum post-op measured slower here (16.7 ms against 12.3 ms for a 16→16
        # 3×3 conv over 460 images at 32 px): the sum and the ReLU go in place into the conv's
        # fresh output instead, in the order the plain ops apply them.
        out = F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
        return out.add_(other).relu_()
    out = F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    return F.relu(out if other is None else out + other)


def _fused_kernel_takes(conv: nn.Conv2d, x: torch.Tensor, weight: torch.Tensor, other: object) -> bool:
    """Whether the fused kernel computes exactly what the plain ops would for these inputs:
    float32 on the CPU, no autograd, and an ``other`` of the output's own shape (the kernel
    does not broadcast)."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() != 4 or weight.dtype != torch.float32:
        return False
    if x.requires_grad or weight.requires_grad:
        return False
    if other is None:
        return True
    if not isinstance(other, torch.Tensor) or other.requires_grad or other.dtype != torch.float32:
        return False
    spatial = [
        (size + 2 * pad - dil * (k - 1) - 1) // stride + 1
        for size, pad, dil, k, stride in zip(
            x.shape[2:], _ints(conv.padding), _ints(conv.dilation), _ints(conv.kernel_size), _ints(conv.stride)
        )
    ]
    return tuple(other.shape) == (x.shape[0], weight.shape[0], *spatial)


def fuse_pointwise(graph: fx.GraphModule) -> int:
    """Rewrite ``graph`` in place (see the module doc); returns how many convs were fused.
    Does nothing without oneDNN."""
    if _pointwise_op() is None:
        return 0
    modules = dict(graph.named_modules())
    calls = Counter(str(n.target) for n in graph.graph.nodes if n.op == "call_module")
    order = {n: i for i, n in enumerate(graph.graph.nodes)}
    fused = 0
    for node in list(graph.graph.nodes):
        conv = modules.get(str(node.target)) if node.op == "call_module" else None
        if type(conv) is not nn.Conv2d or not _plain_padding(conv) or len(node.users) != 1 or len(node.args) != 1:
            continue
        if calls[str(node.target)] != 1 or node.kwargs:
            continue  # a conv module called twice would carry one call's ReLU into the other
        (user,) = node.users
        if _is_relu(user, modules):
            _swap_module(graph, str(node.target), FusedConv2d(conv))
            user.replace_all_uses_with(node)
            graph.graph.erase_node(user)
            fused += 1
            continue
        other = _residual_other(node, user)
        if other is None or len(user.users) != 1 or order[other] > order[node]:
            continue  # (``other`` computed after the conv: see the module doc)
        (relu,) = user.users
        if not _is_relu(relu, modules):
            continue
        _swap_module(graph, str(node.target), FusedConv2d(conv))
        with graph.graph.inserting_before(user):
            replacement = graph.graph.call_module(str(node.target), (node.args[0], other))
        relu.replace_all_uses_with(replacement)
        for dead in (relu, user, node):
            graph.graph.erase_node(dead)
        fused += 1
    graph.graph.lint()
    graph.recompile()
    return fused


def _plain_padding(conv: nn.Conv2d) -> bool:
    return conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


def _is_relu(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules.get(str(node.target)), nn.ReLU)
    if node.op == "call_function":
        return node.target in _RELU_FUNCTIONS and len(node.args) == 1
    return node.op == "call_method" and node.target in ("relu", "relu_") and len(node.args) == 1


def _residual_other(conv: fx.Node, add: fx.Node) -> fx.Node | None:
    """The other summand when ``add`` is ``conv + other`` of two tensors, else None."""
    if add.op != "call_function" or add.target not in _ADD_FUNCTIONS or add.kwargs or len(add.args) != 2:
        return None
    a, b = add.args
    other = b if a is conv else a if b is conv else None
    if not isinstance(other, fx.Node) or other is conv:
        return None
    return other


def _swap_module(graph: fx.GraphModule, target: str, module: nn.Module) -> None:
    parent_name, _, name = target.rpartition(".")
    parent = graph.get_submodule(parent_name) if parent_name else graph
    setattr(parent, name, module)
