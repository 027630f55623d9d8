"""Cuts after the edited conv: only the edited channels are computed again.

An intervention on neurons of a conv changes only those output channels. A readout cut just
before the conv recomputes all of them, for every image and every intervention of the call. A
cut after it keeps the conv's output as the unmodified model computed it, and only the edited
channels are computed:

* a zeroed filter (``weight`` zero, or ``post-bn`` zero, which also zeroes the folded bias)
  outputs its bias, a constant: no convolution at all;
* a noised or re-initialised filter is convolved alone, and the edited filters of all the
  call's interventions on that conv (the seeds, the control draws) in one convolution.

Where the conv's output feeds one other conv and nothing else (a residual block's first conv),
the cut moves past that one too (``NextConv``): a conv is linear, so its output under the edit
is its kept pre-activation plus its response to the edited channels' change alone, a
convolution over those few channels instead of all of them. What is left to run is the rest of
the network from the block's output on.

Uses of the edited conv's output after the next conv (the first conv's output is also the first
block's shortcut) take the output with the edited channels written in.

A conv that computes its ReLU in its kernel (``fusion.FusedConv2d``) gets the ReLU of the
patch. Any edit but a zero needs the conv's input among the values kept (a residual block's
first conv: the block input is the shortcut). The first conv of a network is only ever cut
through the next conv: its input, the images, costs nothing to keep, and a cut just after it
would save only that conv.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn

from labconsole.engine.stage1.folding import FoldedModel, apply_folded
from labconsole.engine.stage1.fusion import FusedConv2d, conv_relu
from labconsole.engine.stage1.interventions import Intervention
from labconsole.engine.stage1.neurons import Layer, group_by_layer


@dataclass(frozen=True)
class NextConv:
    """The conv that the edited conv's output feeds, and nothing else: the change of the edited
    channels is carried through it (it is linear), ``conv(h') = conv(h) + conv(h' − h)`` with
    ``h' − h`` non-zero on the edited channels only, so the cut is after *it*."""

    conv: str
    relu: bool  # its kernel applies a ReLU (after the residual sum, if it takes one)
    other_at: int | None  # index of its residual summand among the kept values
    pre_at: int  # index of its kept pre-activation, conv(h) + bias (+ summand)
    suffix_from: tuple[int, ...]  # per input of the rest of the graph: its kept value's index


@dataclass(frozen=True)
class PatchSite:
    """Where a cut after an edited conv patches that conv's output."""

    conv: str  # the conv module's name in the folded graph (= the layer's name)
    output_at: int  # index of the conv's output among the cut's kept values
    input_at: int | None  # index of the conv's input among them (None: not kept)
    relu: bool  # the conv's kernel applies a ReLU (so must the patch)
    next: NextConv | None = None  # set: the cut is after the next conv (see ``NextConv``)


def _patchable_conv(graph: fx.GraphModule, node: fx.Node) -> nn.Conv2d | None:
    """``node``'s conv when its output channels can be computed alone: a 2-d conv without
    groups and with one input (a conv fused with a residual add cannot: its output mixes in the
    summand)."""
    if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
        return None
    conv = graph.get_submodule(str(node.target))
    if not isinstance(conv, nn.Conv2d) or conv.groups != 1 or conv.padding_mode != "zeros":
        return None
    return None if isinstance(conv.padding, str) else conv


def _index(values: Sequence[fx.Node], node: object) -> int | None:
    return values.index(node) if isinstance(node, fx.Node) and node in values else None


def site_after(graph: fx.GraphModule, node: fx.Node, live: Sequence[fx.Node]) -> PatchSite | None:
    """The site of a cut just after conv ``node``, whose kept values are ``live``."""
    conv = _patchable_conv(graph, node)
    if conv is None or node not in live:
        return None
    return PatchSite(str(node.target), live.index(node), _index(live, node.args[0]), isinstance(conv, FusedConv2d))


def next_conv(graph: fx.GraphModule, node: fx.Node) -> fx.Node | None:
    """The conv that conv ``node``'s output feeds first, as its (first) input, if any, and if
    every other use of that output comes after it (those then take the patched output: the
    stem's output is also the first block's shortcut)."""
    if _patchable_conv(graph, node) is None or not node.users:
        return None
    order = {n: i for i, n in enumerate(graph.graph.nodes)}
    user = min(node.users, key=order.__getitem__)  # the others come after it
    if user.op != "call_module" or not user.args or user.args[0] is not node or node in user.args[1:]:
        return None
    conv = graph.get_submodule(str(user.target))
    plain = isinstance(conv, nn.Conv2d) and conv.groups == 1 and conv.padding_mode == "zeros"
    if not plain or isinstance(conv.padding, str) or user.kwargs or len(user.args) > 2:
        return None
    if len(user.args) == 2 and not isinstance(conv, FusedConv2d):
        return None
    return user


def site_through(
    graph: fx.GraphModule, node: fx.Node, following: fx.Node, kept: Sequence[fx.Node], after: Sequence[fx.Node]
) -> PatchSite:
    """The site of a cut after ``following`` (= ``next_conv(node)``): ``kept`` are the values
    alive before ``following`` (its inputs among them), ``after`` those the rest of the graph
    takes; the kept values are ``kept`` plus ``following``'s pre-activation."""
    conv = graph.get_submodule(str(node.target))
    nxt = graph.get_submodule(str(following.target))
    pre_at = len(kept)
    other_at = _index(kept, following.args[1]) if len(following.args) == 2 else None
    suffix_from = tuple(pre_at if n is following else kept.index(n) for n in after)
    step = NextConv(str(following.target), isinstance(nxt, FusedConv2d), other_at, pre_at, suffix_from)
    return PatchSite(
        str(node.target), kept.index(node), _index(kept, node.args[0]), isinstance(conv, FusedConv2d), step
    )


def with_pre_activation(
    graph: fx.GraphModule, site: PatchSite, values: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, ...]:
    """The kept values of a cut through the next conv: its inputs (as tapped) and its
    pre-activation, computed from them with the unmodified weights."""
    assert site.next is not None
    conv = graph.get_submodule(site.next.conv)
    assert isinstance(conv, nn.Conv2d)
    pre = F.conv2d(values[site.output_at], conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation)
    if site.next.other_at is not None:
        pre = pre + values[site.next.other_at]
    return (*values, pre)


DROPPED = torch.empty(0)  # stands for a kept value a stored cut does without


def kept_values(site: PatchSite | None, values: tuple[torch.Tensor, ...], with_input: bool) -> tuple[torch.Tensor, ...]:
    """What a cut stores of its values: a cut through the next conv needs the edited conv's
    output, the next conv's pre-activation and what the rest of the graph takes, and the
    edited conv's input only for edits other than zero (the residual summand is in the
    pre-activation already); the others are ``DROPPED``. Other cuts store all."""
    if site is None or site.next is None:
        return values
    needed = {site.output_at, site.next.pre_at, *site.next.suffix_from}
    if with_input and site.input_at is not None:
        needed.add(site.input_at)
    return tuple(v if i in needed else DROPPED for i, v in enumerate(values))


def can_patch(site: PatchSite, iv: Intervention) -> bool:
    """A zeroed channel needs only the bias; any other edit needs the conv's input."""
    return iv.mode == "zero" or site.input_at is not None


def call_patches(
    folded: FoldedModel,
    interventions: Sequence[Intervention],
    keys: Sequence[str],
    sites: Sequence[PatchSite | None],
    layers: Mapping[str, Layer],
    norms_after: Mapping[str, str],
) -> dict[str, tuple[ChannelPatches, dict[int, int]]]:
    """Per cut that patches channels (``keys[j]``, ``sites[j]``: intervention ``j``'s cut):
    the patches of the interventions starting there, and each one's position among them (by
    its index in ``interventions``)."""
    at: dict[str, list[int]] = {}
    for j, (key, site) in enumerate(zip(keys, sites)):
        if site is not None:
            at.setdefault(key, []).append(j)
    out = {}
    for key, js in at.items():
        site = sites[js[0]]
        assert site is not None
        patches = ChannelPatches(folded, site, [interventions[j] for j in js], layers, norms_after)
        out[key] = (patches, {j: i for i, j in enumerate(js)})
    return out


def _written(output: torch.Tensor, edit: _Edit, new: torch.Tensor) -> torch.Tensor:
    """A copy of ``output`` with the edited channels' ``new`` values written in, a channel at a
    time (measured: a third of the time of one indexed assignment on a channels-last tensor)."""
    output = output.clone()
    for j, channel in enumerate(edit.channels.tolist()):
        if edit.fill is not None:
            output[:, channel].fill_(float(edit.fill[j]))
        else:
            output[:, channel].copy_(new[:, j])
    return output


def _conv(module: nn.Module) -> nn.Conv2d:
    assert isinstance(module, nn.Conv2d)
    return module


@dataclass
class _Edit:
    channels: torch.Tensor  # the edited output channels
    fill: torch.Tensor | None  # per channel, the constant it outputs (zero mode)
    rows: slice | None  # its filters' rows in the call's stacked convolution
    columns: torch.Tensor | None  # the next conv's filters on these channels (a cut through it)


class ChannelPatches:
    """The edited channels of one site under each intervention of a call, applied chunk by
    chunk. The edited filters are read once, from the folded copy with the intervention
    applied (the very weights the plain walk would use), and restored at once."""

    def __init__(
        self,
        folded: FoldedModel,
        site: PatchSite,
        interventions: Sequence[Intervention],
        layers: Mapping[str, Layer],
        norms_after: Mapping[str, str],
    ):
        self.site = site
        self.conv = _conv(folded.module(site.conv))
        self.next = _conv(folded.module(site.next.conv)) if site.next is not None else None
        self._edits: list[_Edit] = []
        weights: list[torch.Tensor] = []
        biases: list[torch.Tensor] = []
        for iv in interventions:
            channels = group_by_layer(iv.neurons)[site.conv]
            idx = torch.tensor(channels, dtype=torch.long, device=self.conv.weight.device)
            with apply_folded(folded, layers, iv, norms_after), torch.no_grad():
                weight = self.conv.weight.index_select(0, idx).clone()
                bias = self.conv.bias.index_select(0, idx).clone() if self.conv.bias is not None else None
            bias = bias if bias is not None else torch.zeros(len(channels), dtype=weight.dtype, device=weight.device)
            columns = None
            if self.next is not None:  # the next conv is not edited by ``iv`` (the caller checks)
                columns = self.next.weight.index_select(1, idx).contiguous(memory_format=torch.channels_last)
            if iv.mode == "zero":  # a zero filter outputs its bias (0 after a post-BN zero)
                self._edits.append(_Edit(idx, self._activation(bias), None, columns))
                continue
            start = sum(len(w) for w in weights)
            self._edits.append(_Edit(idx, None, slice(start, start + len(channels)), columns))
            weights.append(weight)
            biases.append(bias)
        self._weight = torch.cat(weights) if weights else None
        self._bias = torch.cat(biases) if biases else None
        self._stacked: torch.Tensor | None = None
        self._gathered: dict[tuple[int, ...], torch.Tensor] = {}

    def _activation(self, t: torch.Tensor) -> torch.Tensor:
        return F.relu(t) if self.site.relu else t

    def begin_chunk(self, values: tuple[torch.Tensor, ...]) -> None:
        """Compute the edited filters' channels of one chunk (``values``: the cut's live
        values), for every intervention at once."""
        self._stacked = None
        self._gathered = {}
        if self._weight is not None:
            assert self.site.input_at is not None
            conv = self.conv
            stacked = F.conv2d(
                values[self.site.input_at], self._weight, self._bias, conv.stride, conv.padding, conv.dilation
            )
            self._stacked = self._activation(stacked)

    def patched(self, values: tuple[torch.Tensor, ...], i: int) -> tuple[torch.Tensor, ...]:
        """What the rest of the graph takes under the ``i``-th intervention, from the cut's
        kept ``values`` of one chunk (never written to: they stay as the unmodified model
        computed them)."""
        edit = self._edits[i]
        if edit.fill is not None:
            new = edit.fill.view(1, -1, 1, 1).to(values[self.site.output_at].dtype)
        else:
            assert self._stacked is not None and edit.rows is not None
            new = self._stacked[:, edit.rows]
        if self.site.next is None:
            output = _written(values[self.site.output_at], edit, new)
            return values[: self.site.output_at] + (output,) + values[self.site.output_at + 1 :]
        return self._through_next(values, edit, new)

    def _through_next(
        self, values: tuple[torch.Tensor, ...], edit: _Edit, new: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """The next conv's output: its kept pre-activation plus its response to the change of
        the edited channels alone (response, sum and ReLU in one kernel where it can)."""
        step, nxt = self.site.next, self.next
        assert step is not None and nxt is not None and edit.columns is not None
        change = (new - self._unedited(values, edit.channels)).contiguous(memory_format=torch.channels_last)
        if step.relu:
            output = conv_relu(nxt, change, edit.columns, None, values[step.pre_at])
        else:
            output = values[step.pre_at] + F.conv2d(change, edit.columns, None, nxt.stride, nxt.padding, nxt.dilation)
        edited = values[self.site.output_at]
        if self.site.output_at in step.suffix_from:  # the edited output is used later too
            edited = _written(edited, edit, new)
        return tuple(
            output if at == step.pre_at else edited if at == self.site.output_at else values[at]
            for at in step.suffix_from
        )

    def _unedited(self, values: tuple[torch.Tensor, ...], channels: torch.Tensor) -> torch.Tensor:
        """The edited conv's kept output on ``channels`` (gathered once per chunk and channel
        set: the seeds of a noise readout share theirs)."""
        key = tuple(channels.tolist())
        if key not in self._gathered:
            self._gathered[key] = values[self.site.output_at][:, channels].contiguous(memory_format=torch.channels_last)
        return self._gathered[key]
