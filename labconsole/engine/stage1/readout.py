"""Fast readouts: per-group accuracy of a split after an intervention.

The fast path (DESIGN "Performance approach"):
* images come from the split's device tensor cache (decoded once, uint8), never from files;
* the model is traced once with ``torch.fx``; for an intervention whose first touched module is
  M, the graph is cut just before M, the values alive at the cut ("activations entering M",
  including residual branches) are computed once for the whole split and kept, and each readout
  only runs the rest of the graph. Eval mode is deterministic, so the result is the same as a
  full forward pass. Cuts are kept in a small LRU bounded by a memory budget;
* a model that cannot be traced, or a cut too large for the budget, falls back to a full
  forward pass from the tensor cache.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from labconsole.engine.data.cache import TensorCache
from labconsole.engine.events import CancelToken, NeverCancelled
from labconsole.engine.stage1.fx_trace import symbolic_trace


def _cancelled() -> Exception:
    from labconsole.engine.context import Cancelled

    return Cancelled()


def _autocast(device: torch.device) -> torch.autocast:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@dataclass
class _Cut:
    suffix: Callable[..., torch.Tensor]
    live: list[tuple[Any, ...]] | None  # per batch; None = too big for the budget
    nbytes: int


class SplitEvaluator:
    """Predictions of ``model`` on one cached split, recomputing only from a cut point."""

    def __init__(
        self,
        model: nn.Module,
        cache: TensorCache,
        *,
        batch_size: int = 512,
        budget_bytes: int = 1 << 30,
        use_cuts: bool = True,
    ):
        self.model = model
        self.cache = cache
        self.batch_size = batch_size
        self.budget_bytes = budget_bytes
        self.graph: fx.GraphModule | None = None
        if use_cuts:
            try:
                self.graph = symbolic_trace(model)
            except Exception:
                self.graph = None
        self._cuts: OrderedDict[str, _Cut] = OrderedDict()
        self.last_path = "full"

    # -- public ---------------------------------------------------------------------------------
    @torch.no_grad()
    def predictions(
        self, start_modules: Sequence[str] | None = None, cancel: CancelToken | None = None
    ) -> torch.Tensor:
        """Predicted class per example. ``start_modules``: the modules an active intervention
        touches; everything computed before the first of them is reused from the cut cache."""
        cancel = cancel or NeverCancelled()
        was_training = self.model.training
        self.model.eval()
        try:
            cut = self._cut_for(start_modules, cancel) if start_modules else None
            if cut is None or cut.live is None:
                self.last_path = "full"
                return self._full(cancel)
            self.last_path = "cut"
            preds = []
            with _autocast(self.cache.device):
                for live in cut.live:
                    if cancel.is_set():
                        raise _cancelled()
                    preds.append(cut.suffix(*live).argmax(dim=1))
            return torch.cat(preds)
        finally:
            self.model.train(was_training)

    def clear(self) -> None:
        self._cuts.clear()

    @property
    def cached_bytes(self) -> int:
        return sum(c.nbytes for c in self._cuts.values())

    # -- internals ------------------------------------------------------------------------------
    def _full(self, cancel: CancelToken) -> torch.Tensor:
        preds = []
        with _autocast(self.cache.device):
            for x, _, _ in self.cache.batches(self.batch_size):
                if cancel.is_set():
                    raise _cancelled()
                preds.append(self.model(x).argmax(dim=1))
        return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long, device=self.cache.device)

    def _cut_node(self, start_modules: Sequence[str]) -> fx.Node | None:
        assert self.graph is not None
        wanted = set(start_modules)
        prefixes = tuple(f"{m}." for m in wanted)
        node: fx.Node
        for node in self.graph.graph.nodes:
            if node.op == "call_module" and (node.target in wanted or str(node.target).startswith(prefixes)):
                return node
            if node.op == "get_attr" and str(node.target).startswith(prefixes):
                return node
        return None

    def _cut_for(self, start_modules: Sequence[str], cancel: CancelToken) -> _Cut | None:
        if self.graph is None:
            return None
        node = self._cut_node(start_modules)
        if node is None:
            return None
        key = node.name
        if key in self._cuts:
            self._cuts.move_to_end(key)
            return self._cuts[key]
        prefix, suffix, live_nodes = split_graph(self.graph, node)
        if all(n.op == "placeholder" for n in live_nodes):
            return None  # nothing computed before the cut: the full pass is as fast
        cut = _Cut(suffix=suffix, live=[], nbytes=0)
        with _autocast(self.cache.device):
            for x, _, _ in self.cache.batches(self.batch_size):
                if cancel.is_set():
                    raise _cancelled()
                values = prefix(x)
                cut.nbytes += sum(v.numel() * v.element_size() for v in values if isinstance(v, torch.Tensor))
                if cut.nbytes > self.budget_bytes:
                    cut.live, cut.nbytes = None, 0  # remember that this cut does not fit
                    break
                assert cut.live is not None
                cut.live.append(tuple(values))
        self._cuts[key] = cut
        while self.cached_bytes > self.budget_bytes and len(self._cuts) > 1:
            self._cuts.popitem(last=False)
        return cut


def split_graph(gm: fx.GraphModule, cut: fx.Node) -> tuple[fx.GraphModule, fx.GraphModule, list[fx.Node]]:
    """Split a traced graph before ``cut``: ``prefix(x) -> live values`` and
    ``suffix(*live values) -> output``, sharing ``gm``'s submodules (so weight edits and hooks
    on the original modules apply to both)."""
    nodes = list(gm.graph.nodes)
    at = nodes.index(cut)
    before, after = nodes[:at], nodes[at:]
    after_set = set(after)
    live = [n for n in before if any(user in after_set for user in n.users)]

    head = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for n in before:
        env[n] = head.node_copy(n, lambda a: env[a])
    head.output(tuple(env[n] for n in live))

    tail = fx.Graph()
    env2: dict[fx.Node, fx.Node] = {n: tail.placeholder(f"live_{i}") for i, n in enumerate(live)}
    for n in after:
        if n.op == "output":
            tail.output(fx.node.map_arg(n.args[0], lambda a: env2[a]))
        else:
            env2[n] = tail.node_copy(n, lambda a: env2[a])
    return fx.GraphModule(gm, head), fx.GraphModule(gm, tail), live


def live_before(gm: fx.GraphModule, cut: fx.Node) -> list[fx.Node]:
    """The values computed before ``cut`` that it or a later node uses (what a suffix needs)."""
    nodes = list(gm.graph.nodes)
    at = nodes.index(cut)
    after = set(nodes[at:])
    return [n for n in nodes[:at] if any(user in after for user in n.users)]


def tap_graph(gm: fx.GraphModule, cuts: Sequence[fx.Node]) -> tuple[fx.GraphModule, list[slice]]:
    """One prefix for several cuts: ``tap(x)`` returns the live values of every cut in turn
    (cut ``i``'s are ``tap(x)[slices[i]]``), computing each node once and nothing past the
    deepest cut's live values. Shares ``gm``'s submodules, like ``split_graph``."""
    nodes = list(gm.graph.nodes)
    wanted: list[fx.Node] = []
    slices = []
    for cut in cuts:
        live = live_before(gm, cut)
        slices.append(slice(len(wanted), len(wanted) + len(live)))
        wanted.extend(live)
    last = max(nodes.index(n) for n in wanted) if wanted else -1
    head = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for n in nodes[: last + 1]:
        env[n] = head.node_copy(n, lambda a: env[a])
    head.output(tuple(env[n] for n in wanted))
    tap = fx.GraphModule(gm, head)
    tap.graph.eliminate_dead_code()  # nodes before the deepest cut that no cut needs
    tap.recompile()
    return tap, slices


# -- accuracy and summaries ----------------------------------------------------------------------


def group_accuracy(pred: torch.Tensor, y: torch.Tensor, g: torch.Tensor, num_groups: int) -> list[float | None]:
    """Accuracy per group (None for a group absent from the split)."""
    correct = torch.bincount(g, weights=(pred == y).to(torch.float64), minlength=num_groups)
    total = torch.bincount(g, minlength=num_groups)
    return [float(c) / int(t) if int(t) else None for c, t in zip(correct.tolist(), total.tolist())]


def summarise(
    group_names: Sequence[str], baseline: Sequence[float | None], afters: Iterable[Sequence[float | None]]
) -> dict[str, dict[str, float | None]]:
    """``{"baseline", "after", "delta_pp", "spread_pp"}`` per group name. ``after`` is the mean
    over repeats (seeds or control draws), ``spread_pp`` their standard deviation (n−1; 0 for a
    single repeat), ``delta_pp`` = (after − baseline) × 100."""
    rows = [list(a) for a in afters]
    out: dict[str, dict[str, float | None]] = {"baseline": {}, "after": {}, "delta_pp": {}, "spread_pp": {}}
    for j, name in enumerate(group_names):
        base = baseline[j]
        values = [v for v in (r[j] for r in rows) if v is not None]
        out["baseline"][name] = base
        if base is None or not values:
            out["after"][name] = out["delta_pp"][name] = out["spread_pp"][name] = None
            continue
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
        out["after"][name] = mean
        out["delta_pp"][name] = (mean - base) * 100.0
        out["spread_pp"][name] = math.sqrt(var) * 100.0
    return out
