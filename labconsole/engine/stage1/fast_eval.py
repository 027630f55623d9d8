"""Readouts on the folded eval copy, a split at a time, in two parts: the subsample, the rest.

For the interventions of one call (the critical set's seeds and the control draws), each part
is walked once, chunk by chunk: per chunk, one *tap* pass of the unmodified model computes the
activations every intervention needs at its cut (cuts that share a prefix share its compute),
then each intervention runs the rest of the graph from its own cut. The cut is just before the
first module it touches, or, where that is a conv whose edited channels can be computed alone,
after that conv or after the conv it feeds (``channel_patch``). Only the cut of the call's lead intervention (the readout being
repeated, not its random control) is kept in memory for later calls, within a budget: the
control's cuts are used once, so storing them would only cost memory traffic. When room is
short, the stored cut whose bytes save the least compute per byte goes first, and the lead's
cut is never pushed out by another cut of the same call.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch
from torch import fx

from labconsole.engine.data.cache import TensorCache
from labconsole.engine.events import CancelToken
from labconsole.engine.stage1.channel_patch import (
    DROPPED,
    PatchSite,
    call_patches,
    can_patch,
    kept_values,
    next_conv,
    site_after,
    site_through,
    with_pre_activation,
)
from labconsole.engine.stage1.folding import FoldedModel, apply_folded, start_module
from labconsole.engine.stage1.interventions import Intervention
from labconsole.engine.stage1.neurons import Layer, group_by_layer
from labconsole.engine.stage1.readout import live_before, split_graph, tap_graph

INPUT = "<input>"  # the cut of an intervention on the first layer: the images themselves
PARTS = ("sample", "rest")


def _cancelled() -> Exception:
    from labconsole.engine.context import Cancelled

    return Cancelled()


@dataclass
class _Cut:
    suffix: Callable[..., torch.Tensor]
    node: fx.Node | None  # None: the cut is the input itself
    site: PatchSite | None = None  # a cut after an edited conv: where its channels are patched
    chunks: dict[str, list[tuple[torch.Tensor, ...]]] = field(default_factory=dict)  # part -> stored values
    nbytes: int = 0
    prefix_s: float = 0.0  # measured seconds the stored chunks took to compute

    def value_per_byte(self) -> float:
        """Compute a stored copy saves per byte it holds (an early cut: cheap and large)."""
        return self.prefix_s / self.nbytes if self.nbytes else 0.0


@dataclass
class _Store:
    """The lead cut's values of one part, collected during a walk while they fit the budget."""

    cut: _Cut
    values: list[tuple[torch.Tensor, ...]] = field(default_factory=list)
    nbytes: int = 0
    seconds: float = 0.0


class FastSplitEvaluator:
    """Predictions of the folded model on one split, ordered "subsample, then the rest"."""

    def __init__(
        self,
        folded: FoldedModel,
        cache: TensorCache,
        order: torch.Tensor,
        n_sample: int,
        *,
        batch_size: int = 512,
        budget_bytes: int = 1 << 30,
        channels_last: bool = True,
    ):
        self.folded = folded
        self.cache = cache
        self.order = order.to(cache.images.device)
        self.n_sample = int(n_sample)
        self.batch_size = batch_size
        self.budget_bytes = budget_bytes
        # Images in channels_last on the CPU too: the convolutions then skip a layout reorder
        # per call (measured on the quickstart model: ~1.45× less CPU time per pass than NCHW).
        self.channels_last = channels_last
        self.g_ordered = cache.g[order.to(cache.g.device)]
        self.y_ordered = cache.y[order.to(cache.y.device)]
        self._cuts: OrderedDict[str, _Cut] = OrderedDict()
        self._taps: dict[tuple[str, ...], tuple[fx.GraphModule, list[slice]]] = {}
        self._lead: str | None = None  # cut of the latest call's first intervention
        self._unpatchable: set[str] = set()  # cuts after a conv whose output cannot be patched
        self._order = {n: i for i, n in enumerate(folded.graph.graph.nodes)}  # graph position

    # -- parts -----------------------------------------------------------------------------------
    def positions(self, part: str) -> slice:
        return slice(0, self.n_sample) if part == "sample" else slice(self.n_sample, len(self.order))

    def _inputs(self, part: str) -> Iterator[torch.Tensor]:
        index = self.order[self.positions(part)]
        for start in range(0, len(index), self.batch_size):
            x = self.cache.normalize(self.cache.images[index[start : start + self.batch_size]])
            yield x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def _n_chunks(self, part: str) -> int:
        rows = int(self.positions(part).stop) - int(self.positions(part).start)
        return -(-rows // int(self.batch_size))

    # -- baseline --------------------------------------------------------------------------------
    def logits(self, part: str, cancel: CancelToken) -> torch.Tensor:
        """Logits of the unmodified folded model on ``part`` (float32)."""
        out = []
        with torch.inference_mode():
            for x in self._inputs(part):
                if cancel.is_set():
                    raise _cancelled()
                out.append(self.folded.graph(x).float())
        return torch.cat(out) if out else torch.empty(0, device=self.cache.device)

    # -- interventions ---------------------------------------------------------------------------
    def predictions(
        self,
        interventions: Sequence[Intervention],
        part: str,
        layers: Mapping[str, Layer],
        norms_after: Mapping[str, str],
        cancel: CancelToken,
        on_chunk: Callable[[], None] | None = None,
    ) -> list[torch.Tensor]:
        """Predicted class per example of ``part`` under each intervention (one list entry each),
        in one walk over the part's chunks; ``on_chunk`` is called after each chunk
        (``chunk_steps`` in all)."""
        empty = torch.empty(0, dtype=torch.long, device=self.cache.device)
        if not interventions:
            return []
        keys = [self._cut_key(iv, norms_after) for iv in interventions]
        sites = [self._cuts[key].site for key in keys]
        patches = call_patches(self.folded, interventions, keys, sites, layers, norms_after)
        lead = self._lead = keys[0]
        with_input = any(iv.mode != "zero" for iv, key in zip(interventions, keys) if key == lead)
        stored = self._stored(lead, part, with_input)
        tapped = tuple(dict.fromkeys(k for k in keys if k != INPUT and not (k == lead and stored is not None)))
        needs_input = bool(tapped) or INPUT in keys
        store = _Store(self._cuts[lead]) if lead in tapped else None
        inputs = self._inputs(part) if needs_input else iter(())
        results: list[list[torch.Tensor]] = [[] for _ in interventions]
        for i in range(self._n_chunks(part)):
            if cancel.is_set():
                raise _cancelled()
            values: dict[str, tuple[torch.Tensor, ...]] = {}
            if stored is not None:
                values[lead] = stored[i]
            if needs_input:
                x = next(inputs)
                values[INPUT] = (x,)
                if tapped:
                    t0 = time.perf_counter()
                    values.update(self._tap(tapped, x))
                    if store is not None:  # the whole tap: an upper bound of the lead cut's share
                        store.seconds += time.perf_counter() - t0
            if store is not None:
                store = self._keep(store, kept_values(self._cuts[lead].site, values[lead], with_input))
            with torch.inference_mode():
                for key, (site_patches, _) in patches.items():
                    site_patches.begin_chunk(values[key])
            for j, iv in enumerate(interventions):
                if cancel.is_set():
                    raise _cancelled()
                inputs_j = values[keys[j]]
                if keys[j] in patches:
                    site_patches, positions = patches[keys[j]]
                    inputs_j = site_patches.patched(inputs_j, positions[j])
                with self._applied(iv, layers, norms_after), torch.inference_mode():
                    results[j].append(self._cuts[keys[j]].suffix(*inputs_j).argmax(dim=1))
                del inputs_j
            if on_chunk is not None:
                on_chunk()
        if store is not None:  # only a complete walk is kept (a cancelled one raised above)
            store.cut.chunks[part] = store.values
            store.cut.nbytes += store.nbytes
            store.cut.prefix_s += store.seconds
        return [torch.cat(r) if r else empty for r in results]

    def chunk_steps(self, interventions: Sequence[Intervention], part: str, norms_after: Mapping[str, str]) -> int:
        """How many times ``predictions`` calls ``on_chunk`` for these interventions on ``part``."""
        return self._n_chunks(part) if interventions else 0

    def _applied(
        self, iv: Intervention, layers: Mapping[str, Layer], norms_after: Mapping[str, str]
    ) -> AbstractContextManager[None]:
        return apply_folded(self.folded, layers, iv, norms_after)

    def clear(self) -> None:
        self._cuts.clear()

    @property
    def cached_bytes(self) -> int:
        return sum(c.nbytes for c in self._cuts.values())

    # -- cuts ------------------------------------------------------------------------------------
    def _cut_key(self, iv: Intervention, norms_after: Mapping[str, str]) -> str:
        """The cut an intervention's readout starts from (``channel_patch``): after the conv
        its first edited conv feeds, or else just after that conv, where the edited channels
        can be patched in; else just before it."""
        modules = start_module(self.folded, iv, norms_after)
        before = self._cut_for(modules)
        node = self._cut_node(modules)
        if node is None or str(node.target) not in group_by_layer(iv.neurons):
            return before
        # (the first conv: see ``channel_patch``)
        candidates = (self._cut_through(node),) if before == INPUT else (self._cut_through(node), self._cut_after(node))
        for key in candidates:
            cut = self._cuts[key] if key is not None else None
            if cut is None or cut.site is None or not can_patch(cut.site, iv):
                continue
            if cut.site.next is None or self._edits_only_after(modules, str(node.target), cut):
                return str(key)
        return before

    def _edits_only_after(self, modules: Sequence[str], first: str, cut: _Cut) -> bool:
        """Whether every module an intervention edits, but ``first``, runs after ``cut``'s
        node (the kept values before it are the unmodified model's)."""
        assert cut.node is not None
        starts = [self._cut_node([m]) for m in modules if m != first]
        return all(n is not None and self._order[n] > self._order[cut.node] for n in starts)

    def _cut_after(self, node: fx.Node) -> str | None:
        """The key of the cut just after conv ``node``, None where its output cannot be
        patched."""

        def make() -> _Cut | None:
            following = node.next
            if following.op == "output":
                return None
            _, suffix, live = split_graph(self.folded.graph, following)
            site = site_after(self.folded.graph, node, live)
            return _Cut(suffix=suffix, node=following, site=site) if site is not None else None

        return self._patch_cut(f"{node.name}>", make)

    def _cut_through(self, node: fx.Node) -> str | None:
        """The key of the cut after the conv that conv ``node``'s output feeds first, None
        where there is none."""

        def make() -> _Cut | None:
            graph = self.folded.graph
            following = next_conv(graph, node)
            if following is None or following.next.op == "output":
                return None
            _, suffix, after = split_graph(graph, following.next)
            site = site_through(graph, node, following, live_before(graph, following), after)
            return _Cut(suffix=suffix, node=following, site=site)

        return self._patch_cut(f"{node.name}>>", make)

    def _patch_cut(self, key: str, make: Callable[[], _Cut | None]) -> str | None:
        """``key`` of a cut that patches an edited conv's channels, made on first use by
        ``make`` (None: no such cut here, remembered)."""
        if key in self._unpatchable:
            return None
        if key not in self._cuts:
            cut = make()
            if cut is None:
                self._unpatchable.add(key)
                return None
            self._cuts[key] = cut
        self._cuts.move_to_end(key)
        return key

    def _cut_node(self, start_modules: Sequence[str]) -> fx.Node | None:
        wanted = set(start_modules)
        prefixes = tuple(f"{m}." for m in wanted)
        node: fx.Node
        for node in self.folded.graph.graph.nodes:
            target = str(node.target)
            if node.op == "call_module" and (target in wanted or target.startswith(prefixes)):
                return node
            if node.op == "get_attr" and target.startswith(prefixes):
                return node
        return None

    def _cut_for(self, start_modules: Sequence[str]) -> str:
        """The key of the cut before the first of ``start_modules`` (made on first use)."""
        node = self._cut_node(start_modules)
        key = INPUT if node is None else node.name
        if key in self._cuts:
            self._cuts.move_to_end(key)
            return key
        graph = self.folded.graph
        cut = _Cut(suffix=graph, node=None)
        if node is not None:
            _, suffix, live = split_graph(graph, node)
            if any(n.op != "placeholder" for n in live):
                cut = _Cut(suffix=suffix, node=node)
            else:
                key = INPUT
        self._cuts.setdefault(key, cut)
        return key

    def _tap(self, keys: tuple[str, ...], x: torch.Tensor) -> dict[str, tuple[torch.Tensor, ...]]:
        """The live values at each cut in ``keys`` for the input chunk ``x``, in one pass of the
        unmodified model that stops at the deepest of them."""
        if keys not in self._taps:
            nodes = [self._cuts[k].node for k in keys]
            assert all(n is not None for n in nodes)
            self._taps[keys] = tap_graph(self.folded.graph, [n for n in nodes if n is not None])
        tap, slices = self._taps[keys]
        with torch.inference_mode():
            flat = tap(x)
            values = {key: tuple(flat[where]) for key, where in zip(keys, slices)}
            for key in keys:  # a cut through a conv keeps that conv's pre-activation too
                site = self._cuts[key].site
                if site is not None and site.next is not None:
                    values[key] = with_pre_activation(self.folded.graph, site, values[key])
        return values

    def _stored(self, key: str, part: str, with_input: bool) -> list[tuple[torch.Tensor, ...]] | None:
        """The kept values of cut ``key`` on ``part``, if there are and they serve this call:
        a cut through a conv kept for zeroed filters only has no input of the edited conv, which
        any other edit needs (the cut is then dropped, and this call keeps it anew)."""
        cut = self._cuts[key]
        stored = cut.chunks.get(part) if key != INPUT else None
        at = cut.site.input_at if cut.site is not None else None
        if stored and with_input and at is not None and stored[0][at] is DROPPED:
            cut.chunks.clear()
            cut.nbytes, cut.prefix_s = 0, 0.0
            return None
        return stored

    def _keep(self, store: _Store, values: tuple[torch.Tensor, ...]) -> _Store | None:
        """Add one chunk to the lead cut's store; None once it cannot fit (the cut is then
        recomputed by each later call instead)."""
        store.values.append(values)
        store.nbytes += sum(v.numel() * v.element_size() for v in values if v is not DROPPED)
        incoming = (store.cut.prefix_s + store.seconds) / max(1, store.cut.nbytes + store.nbytes)
        while self.cached_bytes + store.nbytes > self.budget_bytes and self._evict(store.cut, incoming):
            pass
        return None if self.cached_bytes + store.nbytes > self.budget_bytes else store

    def _evict(self, incoming: _Cut, incoming_value: float) -> bool:
        """Drop the stored cut that saves the least compute per byte, if it saves less than
        ``incoming`` would (``incoming_value``: its seconds per byte so far). An early cut is
        cheap to recompute and large; a late cut's prefix is most of the network, so a readout
        touching early layers cannot push out the cut of a readout being repeated. The lead cut
        (the latest call's first intervention) is never dropped for another cut."""
        lead = self._cuts.get(self._lead) if self._lead is not None else None
        candidates = [c for c in self._cuts.values() if c is not incoming and c is not lead and c.nbytes]
        if not candidates:
            return False
        old = min(candidates, key=lambda c: c.value_per_byte())
        if old.value_per_byte() >= incoming_value:
            return False
        old.chunks.clear()
        old.nbytes = 0
        old.prefix_s = 0.0
        return True
