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
  the flips are the hard (memorized) examples.

Everything here is measured on the same evaluation path, so the critical Δ and the control
draws are comparable number for number.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from labconsole.engine.context import Cancelled
from labconsole.engine.records.evidence import Evidence
from labconsole.engine.records.sections import Readout, ReadoutSplit
from labconsole.engine.stage1.call_progress import CallProgress, RateLimited, rate_limited
from labconsole.engine.stage1.evidence_stats import empirical_p, signature
from labconsole.engine.stage1.evidence_stats import verdict_line as verdict_line  # read from here by the CLI
from labconsole.engine.stage1.interventions import Intervention
from labconsole.engine.stage1.neurons import NeuronRef, group_by_layer
from labconsole.engine.stage1.readout import summarise
from labconsole.errors import UserError

if TYPE_CHECKING:
    from labconsole.engine.stage1.session import Session

CONTROL_KINDS = ("layer-matched", "anywhere")
MAX_FLIPS_LISTED = 500  # per group, split and direction; the counts are always exact
PARTIAL_RATE = 2.0  # partial results a second at most, after the first (each redraws a table)
OnPartial = Callable[[dict[str, Any]], None]


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

_baselines: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], dict[str, torch.Tensor]]] = weakref.WeakKeyDictionary()


def _fast_path(session: Session, split: str, interventions: Sequence[Intervention]) -> Any:
    """The session's folded evaluator of ``split`` when it computes every one of these
    interventions (then the baseline must come from it too, so both share one path)."""
    from labconsole.engine.stage1.folding import supports

    fast = session.fast_evaluator(split)
    return fast if fast is not None and all(supports(iv) for iv in interventions) else None


def predictions_after(session: Session, split: str, interventions: Sequence[Intervention]) -> list[torch.Tensor]:
    """Predictions (split order) after each intervention, walked together by the session."""
    return session.predictions_after(split, list(interventions))


def _baseline_logits(session: Session, split: str, fast: Any) -> torch.Tensor:
    """Logits of the unmodified model (split order) on the same path as the interventions: the
    session's own baseline on the fast path (no second pass)."""
    kept = session.baseline_logits(split) if fast is not None else None
    if kept is not None:
        return kept
    cache = session.cache(split)
    model = session.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat([model(x).float() for x, _, _ in cache.batches(session.config.batch_size)])
    finally:
        model.train(was_training)


def baseline_record(session: Session, split: str, fast: Any = None) -> dict[str, torch.Tensor]:
    """The unmodified model on ``split``: predictions, per-example CE and margin (true-class
    logit minus the best other logit); computed once per session, split and evaluation path."""
    per_session = _baselines.setdefault(session, {})
    key = (split, "fast" if fast is not None else "plain")
    if key not in per_session:
        y = session.cache(split).y
        logits = _baseline_logits(session, split, fast).to(y.device)
        true = logits.gather(1, y[:, None]).squeeze(1)
        other = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
        per_session[key] = {
            "pred": logits.argmax(dim=1),
            "loss": F.cross_entropy(logits, y, reduction="none").cpu(),
            "margin": (true - other).cpu(),
        }
    return per_session[key]


def _accuracy(session: Session, split: str, pred: torch.Tensor) -> list[float | None]:
    from labconsole.engine.stage1.readout import group_accuracy

    cache = session.cache(split)
    return group_accuracy(pred, cache.y, cache.g, session.bundle.groups.num_groups)


def _deltas_pp(base: Sequence[float | None], after: Sequence[float | None]) -> list[float | None]:
    return [None if b is None or a is None else (a - b) * 100.0 for b, a in zip(base, after)]


def flips(
    session: Session, split: str, pred_after: torch.Tensor, record: Mapping[str, torch.Tensor] | None = None
) -> dict[str, dict[str, Any]]:
    """Per group: split positions that went right → wrong and wrong → right, with the
    unmodified model's CE loss and margin for each (lists capped, counts exact)."""
    record = record if record is not None else baseline_record(session, split)
    cache = session.cache(split)
    y, g = cache.y.cpu(), cache.g.cpu()
    before_ok = record["pred"].cpu() == y
    after_ok = pred_after.cpu() == y
    out: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(session.group_names):
        member = g == j
        entry: dict[str, Any] = {}
        for direction, moved in (("to_wrong", before_ok & ~after_ok), ("to_right", ~before_ok & after_ok)):
            ids = torch.nonzero(member & moved).flatten()
            listed = ids[:MAX_FLIPS_LISTED]
            entry[f"n_{direction}"] = len(ids)
            entry[direction] = [int(i) for i in listed.tolist()]
            entry[f"{direction}_loss"] = [round(float(v), 5) for v in record["loss"][listed].tolist()]
            entry[f"{direction}_margin"] = [round(float(v), 5) for v in record["margin"][listed].tolist()]
        entry["n"] = int(member.sum())
        # How hard the flipped examples were for the model, next to the group as a whole.
        entry["group_mean_loss"] = float(record["loss"][member].mean()) if entry["n"] else None
        out[name] = entry
    return out


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
    flips: dict[str, dict[str, Any]]
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
) -> dict[str, Any]:
    """The critical set's Δ per group and split next to ``draws`` control draws, with p, the
    memorization signature and the flipped examples. Returns plain values::

        {"kind", "draws", "histogram", "control_neurons", "critical": {split: {g: Δpp}},
         "control": {split: <readout.summarise shape>}, "draws_pp": {split: {g: [Δpp per draw]}},
         "p": {split: {g: p}}, "signature": {...} | None, "flips": {split: {g: {...}}}}

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
            record = baseline_record(session, split, _fast_path(session, split, critical_ivs + control_ivs))
            preds = predictions_after(session, split, ivs)
            if first:
                base = _accuracy(session, split, record["pred"])
                afters = [_accuracy(session, split, pred) for pred in preds[:repeats]]
                crit = summarise(session.group_names, base, afters)["delta_pp"]
                measured[split] = _SplitEvidence(base, crit, flips(session, split, preds[0], record))
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
) -> dict[str, Any]:
    """``evidence_readout``'s result over the first ``len(picks)`` control draws measured."""
    groups = list(session.group_names)
    critical = {split: dict(found.critical) for split, found in measured.items()}
    control: dict[str, Any] = {}
    draws_pp: dict[str, dict[str, list[float]]] = {}
    p_values: dict[str, dict[str, float | None]] = {}
    for split, found in measured.items():
        ctrl_afters = found.control_afters[: len(picks)]
        control[split] = summarise(groups, found.base, ctrl_afters)
        per_draw = [_deltas_pp(found.base, a) for a in ctrl_afters]
        draws_pp[split] = {g: [v for v in (row[j] for row in per_draw) if v is not None] for j, g in enumerate(groups)}
        p_values[split] = {}
        for g in groups:
            value = found.critical[g]
            p_values[split][g] = None if value is None else empirical_p(value, draws_pp[split][g])
    return {
        "kind": kind,
        "draws": len(picks),
        "histogram": layer_histogram(neurons),
        "control_neurons": [[list(n) for n in p] for p in picks],
        "critical": critical,
        "control": control,
        "draws_pp": draws_pp,
        "p": p_values,
        "signature": signature(critical, draws_pp, groups),
        "flips": {split: found.flips for split, found in measured.items()},
        "flip_ids": "positions in the split",
    }


def with_evidence(readout: Readout, found: Mapping[str, Any], kind: str) -> Readout:
    """``readout`` with the control of ``evidence_readout``'s ``found`` (its splits and each
    draw's neurons) and the rest of ``found`` as its ``evidence`` (p, signature, flips)."""
    rest = {key: value for key, value in found.items() if key not in ("control", "control_neurons")}
    out = readout.model_copy(deep=True)
    out.control = {split: ReadoutSplit.model_validate(data) for split, data in found["control"].items()}
    out.control_neurons = [[(str(layer), int(index)) for layer, index in draw] for draw in found["control_neurons"]]
    out.control_kind = kind
    out.evidence = Evidence.model_validate(rest)
    return out


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
            line = verdict_line(sig.to_json(), groups)
            if line:
                lines.append(f"  {line}")
    lines.append("cells: critical Δpp [control mean ± sd] p; p = (1 + #draws at least as low) / (draws + 1)")
    return "\n".join(lines)


def _cell(value: float | None, mean: float | None, sd: float | None, p: float | None) -> str:
    if value is None:
        return "—"
    control = "" if mean is None else f" [{mean:+.1f}±{(sd or 0):.1f}]"
    return f"{value:+.1f}{control} p={p:.2f}" if p is not None else f"{value:+.1f}{control}"


def flip_thumbnails(session: Session, found: Evidence, groups: Sequence[str], per_group: int = 12) -> bytes | None:
    """A PNG grid of the training images that went right → wrong, one row per group in
    ``groups`` (up to ``per_group`` each, ×2 nearest-neighbour); None when nothing flipped."""
    import io

    from PIL import Image

    flips = found.flips.get("train") or {}
    rows = [[int(i) for i in flips[g].to_wrong[:per_group]] if g in flips else [] for g in groups]
    if not any(rows):
        return None
    images = session.cache("train").images
    _, height, width = images.shape[1:]
    scale, pad = 2, 2
    cell_w, cell_h = width * scale + pad, height * scale + pad
    canvas = Image.new("RGB", (per_group * cell_w + pad, len(rows) * cell_h + pad), (255, 255, 255))
    for r, positions in enumerate(rows):
        for c, position in enumerate(positions):
            pixels = images[position].cpu()
            if pixels.shape[0] == 1:
                pixels = pixels.expand(3, -1, -1)
            tile = Image.fromarray(pixels[:3].permute(1, 2, 0).contiguous().numpy()).resize(
                (width * scale, height * scale), Image.Resampling.NEAREST
            )
            canvas.paste(tile, (pad + c * cell_w, pad + r * cell_h))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()
