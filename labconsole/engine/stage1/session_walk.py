"""How a ``Session`` walks a split under many interventions at once: the batched fast path
(BN folded, the interventions of one call evaluated together over the cached cut) and the
progressive readout (a stratified subsample first, for the estimate, then the rest, for the
exact numbers), falling back to one plain pass per intervention where the fast path does not
apply."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from labconsole.engine.records.sections import ReadoutSplit
from labconsole.engine.stage1 import progressive as sampling
from labconsole.engine.stage1.call_progress import CallProgress, rate_limited
from labconsole.engine.stage1.fast_eval import PARTS
from labconsole.engine.stage1.folding import supports
from labconsole.engine.stage1.interventions import Intervention, apply_intervention, touched_modules
from labconsole.engine.stage1.readout import group_accuracy, summarise

if TYPE_CHECKING:
    from labconsole.engine.stage1.session import Session

# The progress callback of the readout a session is running (its walk reports to it).
_REPORTING: weakref.WeakKeyDictionary[Session, CallProgress] = weakref.WeakKeyDictionary()


@contextmanager
def reporting(session: Session, progress: CallProgress | None) -> Iterator[None]:
    """Inside the block, the session's progressive walks report (chunks walked, chunks in the
    walk) to ``progress``, at most ~10×/s; a plain-path readout reports nothing."""
    limited = rate_limited(progress)
    if limited is None:
        yield
        return
    _REPORTING[session] = limited
    try:
        yield
    finally:
        _REPORTING.pop(session, None)


def accuracies_after(session: Session, split: str, interventions: Sequence[Intervention]) -> list[list[float | None]]:
    """Per-group accuracy after each intervention (batched on the fast path where it applies)."""
    fast = session.fast_evaluator(split)
    if fast is None or not all(supports(iv) for iv in interventions):
        return [session.accuracy_after(split, iv) for iv in interventions]
    session._baseline(split)
    correct = torch.cat([fast_correct(session, split, list(interventions), part) for part in PARTS], dim=1)
    return [group_accuracy_of(session, row, fast.g_ordered) for row in correct]


def predictions_after(session: Session, split: str, interventions: Sequence[Intervention]) -> list[torch.Tensor]:
    """Predicted class per example of ``split`` (split order) after each intervention; the
    interventions are walked together on the fast path where it applies (flips, matched
    controls with many draws)."""
    fast = session.fast_evaluator(split)
    if fast is None or not all(supports(iv) for iv in interventions):
        out = []
        for iv in interventions:
            norms = session.norms_after() if iv.where == "post-bn" else {}
            with apply_intervention(session.model, session._by_name, iv, norms):
                out.append(
                    session.evaluator(split).predictions(touched_modules(iv, session._by_name, norms), session.cancel)
                )
        return out
    norms = session.norms_after() if any(iv.where == "post-bn" for iv in interventions) else {}
    parts = [fast.predictions(interventions, part, session._by_name, norms, session.cancel) for part in PARTS]
    order = fast.order.to(session.cache(split).y.device)
    result = []
    for i in range(len(interventions)):
        ordered = torch.cat([parts[0][i], parts[1][i]])
        pred = torch.empty_like(ordered)
        pred[order] = ordered
        result.append(pred)
    return result


def fast_correct(
    session: Session,
    split: str,
    ivs: Sequence[Intervention],
    part: str,
    on_chunk: Callable[[], None] | None = None,
) -> torch.Tensor:
    """bool [len(ivs), n_part]: is each example of ``part`` right under each intervention."""
    fast = session.fast_evaluator(split)
    assert fast is not None
    if not ivs:
        return torch.zeros((0, fast.positions(part).stop - fast.positions(part).start), dtype=torch.bool)
    norms = session.norms_after() if any(iv.where == "post-bn" for iv in ivs) else {}
    preds = fast.predictions(ivs, part, session._by_name, norms, session.cancel, on_chunk)
    y = fast.y_ordered[fast.positions(part)]
    return torch.stack([p == y for p in preds])


def group_accuracy_of(session: Session, correct: torch.Tensor, g: torch.Tensor) -> list[float | None]:
    return group_accuracy(correct.long(), torch.ones_like(correct, dtype=torch.long), g, len(session.group_names))


Splits = dict[str, ReadoutSplit]  # split -> its readout numbers


@dataclass
class Walked:
    """``progressive``'s result: per intervention set, its estimate and its exact numbers per
    split, and the seconds from the call's start to the estimate."""

    estimates: list[Splits]
    exacts: list[Splits]
    seconds_to_estimate: float


def progressive(
    session: Session,
    splits: Sequence[str],
    sets: Sequence[Sequence[Intervention]],
    started: float,
    on_estimate: Callable[[list[Splits], float], None] | None,
    progress: CallProgress | None = None,
) -> Walked:
    """Estimate then exact readouts of several intervention sets (e.g. the critical set's
    seeds and the control draws), all evaluated in the same walk over each split's parts.
    ``on_estimate`` gets the estimates (per set, per split) and the seconds since ``started``
    before the rest is walked. ``progress`` gets (chunks walked, chunks in the whole walk) as
    it goes, ≤ ~10×/s."""
    flat = [iv for group in sets for iv in group]
    on_chunk = _chunk_counter(session, splits, flat, progress or _REPORTING.get(session))
    bounds = [0]
    for group in sets:
        bounds.append(bounds[-1] + len(group))
    estimates: list[Splits] = [{} for _ in sets]
    sample: dict[str, torch.Tensor] = {}
    for split in splits:
        baseline = session._baseline(split)
        fast = session.fast_evaluator(split)
        assert fast is not None
        sample[split] = correct = fast_correct(session, split, flat, "sample", on_chunk)
        part = fast.positions("sample")
        totals = session.bundle.split(split).group_counts(len(session.group_names))
        for i, group in enumerate(sets):
            if group:
                estimates[i][split] = sampling.estimate(
                    session.group_names,
                    baseline,
                    totals,
                    fast.g_ordered[part],
                    session._base_correct[split][part],
                    correct[bounds[i] : bounds[i + 1]],
                )
    to_estimate = time.monotonic() - started
    if on_estimate is not None:
        on_estimate(estimates, to_estimate)
    exacts: list[Splits] = [{} for _ in sets]
    for split in splits:
        fast = session.fast_evaluator(split)
        assert fast is not None
        full = torch.cat([sample[split], fast_correct(session, split, flat, "rest", on_chunk)], dim=1)
        for i, group in enumerate(sets):
            if group:
                afters = [group_accuracy_of(session, row, fast.g_ordered) for row in full[bounds[i] : bounds[i + 1]]]
                exacts[i][split] = ReadoutSplit.model_validate(
                    summarise(session.group_names, session._baseline(split), afters)
                )
    return Walked(estimates, exacts, to_estimate)


def _chunk_counter(
    session: Session, splits: Sequence[str], ivs: Sequence[Intervention], progress: CallProgress | None
) -> Callable[[], None] | None:
    """A step callback counting the walk's chunks into ``progress`` (None without one)."""
    report = rate_limited(progress)
    if report is None:
        return None
    norms = session.norms_after() if any(iv.where == "post-bn" for iv in ivs) else {}
    total = 0
    for split in splits:
        fast = session.fast_evaluator(split)
        assert fast is not None
        total += sum(fast.chunk_steps(ivs, part, norms) for part in PARTS)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        report(done, total)

    return step
