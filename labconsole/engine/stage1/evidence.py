"""Evidence for a Stage I readout: is a drop specific to the chosen neurons, and what did they hold?

* **Layer-matched control.** A control draw takes as many neurons *from each layer* as the
  critical set has there (the same per-layer histogram; the critical neurons themselves are
  excluded when the layer has enough others), so a drop that comes from the layer — not from the
  neurons — shows in the control too. The unmatched control (neurons from anywhere) stays as an
  option. Each draw is one readout; the control's mean ± sd is over draws. The draws can be
  walked a batch at a time, with the result over the draws so far after each (the console's
  provisional numbers); each draw is still walked once.
* **Significance and the memorization signature.** The empirical p of each critical Δ against
  its draws, and Paper A's signature (train drops, test holds) with its verdict: the numbers
  and the rule are in ``evidence_stats``, shared with the sweep's over-seeds table.
* **Flipped examples.** Which examples changed prediction (split positions per group, both
  directions), with the unmodified model's loss and margin for each, so a reader can see whether
  the flips are the hard (memorized) examples: ``evidence_flips``.

Everything here is measured on the same evaluation path, so the critical Δ and the control
draws are comparable number for number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from labconsole.engine.context import Cancelled
from labconsole.engine.records.evidence import GroupFlips
from labconsole.engine.records.measured_evidence import MeasuredEvidence
from labconsole.engine.records.sections import Readout, ReadoutSplit
from labconsole.engine.stage1.call_progress import CallProgress, RateLimited, rate_limited
from labconsole.engine.stage1.evidence_flips import baseline_record, group_flips, on_fast_path
from labconsole.engine.stage1.evidence_stats import empirical_p, signature
from labconsole.engine.stage1.evidence_stats import verdict_line as verdict_line  # read from here by the CLI
from labconsole.engine.stage1.interventions import Intervention
from labconsole.engine.stage1.neurons import NeuronRef, group_by_layer
from labconsole.engine.stage1.readout import summarise
from labconsole.errors import UserError

if TYPE_CHECKING:
    from labconsole.engine.stage1.session import Session

CONTROL_KINDS = ("layer-matched", "anywhere")
PARTIAL_RATE = 2.0  # partial results a second at most, after the first (each redraws a table)
OnPartial = Callable[[MeasuredEvidence], None]


# -- control draws ---------------------------------------------------------------------------------


def layer_histogram(neurons: Sequence[NeuronRef]) -> dict[str, int]:
    """How many of ``neurons`` sit in each layer, in first-seen order."""
    return {layer: len(indices) for layer, indices in group_by_layer(neurons).items()}


def matched_draws(
    neurons: Sequence[NeuronRef], layer_sizes: Mapping[str, int], draws: int, seed: int
) -> list[list[NeuronRef]]:
    """``draws`` neuron sets with the per-layer histogram of ``neurons``. In each layer the
    indices are distinct and avoid the critical ones whenever the layer has enough others."""
    per_layer = group_by_layer(neurons)
    out: list[list[NeuronRef]] = []
    for d in range(int(draws)):
        generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + d)
        pick: list[NeuronRef] = []
        for layer, critical in per_layer.items():
            size = int(layer_sizes[layer])
            if len(critical) > size:
                raise UserError(f"{len(critical)} neurons asked for in {layer}, which has {size}")
            others = [i for i in range(size) if i not in set(critical)]
            pool = others if len(others) >= len(critical) else list(range(size))
            chosen = torch.randperm(len(pool), generator=generator)[: len(critical)].tolist()
            pick += [(layer, pool[j]) for j in chosen]
        out.append(pick)
    return out


def anywhere_draws(layer_sizes: Mapping[str, int], count: int, draws: int, seed: int) -> list[list[NeuronRef]]:
    """``draws`` sets of ``count`` distinct neurons drawn uniformly from all eligible neurons."""
    owners = [(layer, i) for layer, size in layer_sizes.items() for i in range(int(size))]
    if count > len(owners):
        raise UserError(f"{count} random neurons requested, the model has {len(owners)} eligible neurons")
    out = []
    for d in range(int(draws)):
        generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + d)
        out.append([owners[j] for j in torch.randperm(len(owners), generator=generator)[:count].tolist()])
    return out


# -- readouts on one evaluation path ---------------------------------------------------------------


def predictions_after(session: Session, split: str, interventions: Sequence[Intervention]) -> list[torch.Tensor]:
    """Predictions (split order) after each intervention, walked together by the session."""
    return session.predictions_after(split, list(interventions))


def _accuracy(session: Session, split: str, pred: torch.Tensor) -> list[float | None]:
    from labconsole.engine.stage1.readout import group_accuracy

    cache = session.cache(split)
    return group_accuracy(pred, cache.y, cache.g, session.bundle.groups.num_groups)


def _deltas_pp(base: Sequence[float | None], after: Sequence[float | None]) -> list[float | None]:
    return [None if b is None or a is None else (a - b) * 100.0 for b, a in zip(base, after)]


def draw_batches(total: int, first: int) -> list[range]:
    """The control draws in the order they are walked: the first ``first`` of them (with the
    critical set), then the rest ``first`` at a time; one batch of all when ``first`` is 0 or
    covers them. Each draw is walked once, whatever the batches."""
    total, first = max(0, int(total)), max(0, int(first))
    if first == 0 or first >= total:
        return [range(total)]
    return [range(start, min(start + first, total)) for start in range(0, total, first)]


@dataclass
class _SplitEvidence:
    """What the walk over one split has measured so far: the baseline and the critical set's
    Δ and flips (from the first batch), and each control draw's accuracies, in draw order."""

    base: list[float | None]
    critical: dict[str, float | None]
    flips: dict[str, GroupFlips]
    control_afters: list[list[float | None]] = field(default_factory=list)


def evidence_readout(
    session: Session,
    neurons: Sequence[NeuronRef],
    *,
    mode: str = "zero",
    std: float = 0.01,
    seeds: int = 1,
    where: str = "weight",
    splits: Sequence[str] = ("train", "test"),
    draws: int = 20,
    kind: str = "layer-matched",
    seed: int = 0,
    first_draws: int = 0,
    on_partial: OnPartial | None = None,
    progress: CallProgress | None = None,
) -> MeasuredEvidence:
    """The critical set's Δ per group and split next to ``draws`` control draws, with p, the
    memorization signature and the flipped examples: ``critical`` {split: {g: Δpp}}, ``control``
    {split: ReadoutSplit} (the draws' mean ± sd), ``control_neurons`` (each draw's),
    ``draws_pp`` {split: {g: [Δpp per draw]}}, ``p`` {split: {g: p}}, ``signature`` (None
    without train and test) and ``flips`` {split: {g: GroupFlips}}.

    With ``first_draws``, the draws are walked in batches of that many (``draw_batches``), each
    once: after the first batch ``on_partial`` gets the same result over the draws so far, then
    after later ones at most ``PARTIAL_RATE`` times a second (not after the last: that result is
    returned); ``progress`` gets (draws walked, draws). Draw d is the same neurons however the
    draws are batched (seeded by d) and is evaluated on its own, so the result is the one-batch
    walk's, number for number. ``session.cancel`` stops the walk (``Cancelled``)."""
    if kind not in CONTROL_KINDS:
        raise UserError(f"neurons.control = {kind!r}: expected one of {', '.join(CONTROL_KINDS)}")
    neurons = [(str(layer), int(index)) for layer, index in neurons]
    sizes = {name: layer.n_neurons for name, layer in session._by_name.items()}
    picks = (
        matched_draws(neurons, sizes, draws, seed)
        if kind == "layer-matched"
        else anywhere_draws(sizes, len(neurons), draws, seed)
    )
    repeats = 1 if mode == "zero" else max(1, int(seeds))
    critical_ivs = [Intervention(tuple(neurons), mode, std, seed + s, where) for s in range(repeats)]
    control_ivs = [Intervention(tuple(p), mode, std, d, where) for d, p in enumerate(picks)]
    measured: dict[str, _SplitEvidence] = {}

    def send_partial(done: int, _total: int) -> None:
        if on_partial is not None:
            on_partial(_found(session, kind, neurons, picks[:done], measured))

    partial = RateLimited(send_partial, PARTIAL_RATE)  # the first batch's always gets through
    counted = rate_limited(progress)
    if counted is not None:
        counted(0, len(picks))
    batched = first_draws if on_partial is not None or counted is not None else 0  # else one walk of all
    for batch in draw_batches(len(picks), batched):
        if session.cancel.is_set():
            raise Cancelled()
        for split in splits:
            first = split not in measured
            # The critical set (first: the walk's lead) and this batch's draws in one walk.
            ivs = (critical_ivs if first else []) + control_ivs[batch.start : batch.stop]
            record = baseline_record(session, split, on_fast_path(session, split, critical_ivs + control_ivs))
            preds = predictions_after(session, split, ivs)
            if first:
                base = _accuracy(session, split, record.pred)
                afters = [_accuracy(session, split, pred) for pred in preds[:repeats]]
                crit = summarise(session.group_names, base, afters)["delta_pp"]
                measured[split] = _SplitEvidence(base, crit, group_flips(session, split, preds[0], record))
            lead = repeats if first else 0
            measured[split].control_afters += [_accuracy(session, split, pred) for pred in preds[lead:]]
        if counted is not None:
            counted(batch.stop, len(picks))
        if on_partial is not None and batch.stop < len(picks):
            partial(batch.stop, len(picks))
    return _found(session, kind, neurons, picks, measured)


def _found(
    session: Session,
    kind: str,
    neurons: Sequence[NeuronRef],
    picks: Sequence[Sequence[NeuronRef]],
    measured: Mapping[str, _SplitEvidence],
) -> MeasuredEvidence:
    """``evidence_readout``'s result over the first ``len(picks)`` control draws measured."""
    groups = list(session.group_names)
    critical = {split: dict(found.critical) for split, found in measured.items()}
    control: dict[str, ReadoutSplit] = {}
    draws_pp: dict[str, dict[str, list[float]]] = {}
    p_values: dict[str, dict[str, float | None]] = {}
    for split, found in measured.items():
        ctrl_afters = found.control_afters[: len(picks)]
        control[split] = ReadoutSplit.model_validate(summarise(groups, found.base, ctrl_afters))
        per_draw = [_deltas_pp(found.base, a) for a in ctrl_afters]
        draws_pp[split] = {g: [v for v in (row[j] for row in per_draw) if v is not None] for j, g in enumerate(groups)}
        p_values[split] = {}
        for g in groups:
            value = found.critical[g]
            p_values[split][g] = None if value is None else empirical_p(value, draws_pp[split][g])
    return MeasuredEvidence(
        kind=kind,
        draws=len(picks),
        histogram=layer_histogram(neurons),
        control_neurons=[list(p) for p in picks],
        critical=critical,
        control=control,
        draws_pp=draws_pp,
        p=p_values,
        signature=signature(critical, draws_pp, groups),
        flips={split: found.flips for split, found in measured.items()},
        flip_ids="positions in the split",
    )


def with_evidence(readout: Readout, found: MeasuredEvidence, kind: str) -> Readout:
    """``readout`` with the control of ``evidence_readout``'s ``found`` (its splits and each
    draw's neurons) and the rest of ``found`` as its ``evidence`` (p, signature, flips)."""
    return found.merged_into(readout, kind)


def format_evidence(rows: Sequence[Readout], groups: Sequence[str]) -> str:
    """Plain text: per readout and split, the critical Δ, the control mean ± sd and p per group;
    then the signature Δtrain − Δtest with its p; then the verdict line."""
    width = max(22, *(len(g) for g in groups))
    lines = [f"{'readout':<34} {'':<9}" + "".join(f" {g:>{width}}" for g in groups)]
    for row in rows:
        found = row.evidence
        if found is None:
            continue
        first = True
        for split, crit in found.critical.items():
            control = row.control_split(split) or ReadoutSplit()
            cells = []
            for g in groups:
                p = found.p.get(split, {}).get(g)
                cells.append(_cell(crit.get(g), control.delta_pp.get(g), control.spread_pp.get(g), p))
            lines.append(f"{(row.label if first else ''):<34.34} {split:<9}" + "".join(f" {c:>{width}}" for c in cells))
            first = False
        sig = found.signature
        if sig:
            cells = [
                _cell(sig.critical_pp.get(g), sig.control_mean_pp.get(g), sig.control_sd_pp.get(g), sig.p.get(g))
                for g in groups
            ]
            lines.append(f"{'':<34} {'tr − te':<9}" + "".join(f" {c:>{width}}" for c in cells))
            line = verdict_line(sig, groups)
            if line:
                lines.append(f"  {line}")
    lines.append("cells: critical Δpp [control mean ± sd] p; p = (1 + #draws at least as low) / (draws + 1)")
    return "\n".join(lines)


def _cell(value: float | None, mean: float | None, sd: float | None, p: float | None) -> str:
    if value is None:
        return "—"
    control = "" if mean is None else f" [{mean:+.1f}±{(sd or 0):.1f}]"
    return f"{value:+.1f}{control} p={p:.2f}" if p is not None else f"{value:+.1f}{control}"
