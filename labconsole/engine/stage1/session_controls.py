"""How a ``Session`` assembles a readout (a ``records.Readout``) and its random-neuron control:
as many neurons drawn uniformly from all eligible neurons, the same intervention applied to each
draw, computed once per (count, mode, σ, where, splits, draws) and reused (the layer-matched
control lives in ``evidence``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from labconsole.engine.records.sections import Readout, ReadoutSplit
from labconsole.engine.stage1 import session_walk as walk
from labconsole.engine.stage1.folding import supports
from labconsole.engine.stage1.interventions import Intervention, check_mode
from labconsole.engine.stage1.neurons import NeuronRef, check_neurons
from labconsole.engine.stage1.readout import summarise
from labconsole.errors import UserError

if TYPE_CHECKING:
    from labconsole.engine.stage1.session import Session

ControlKey = tuple[int, str, float | None, str, tuple[str, ...], int]
OnEstimate = Callable[[Readout], None]


def readout(
    session: Session,
    neurons: Sequence[NeuronRef],
    mode: str,
    std: float,
    seeds: int,
    splits: Sequence[str],
    where: str,
    control_draws: int,
    control: bool,
    label: str,
    seed: int | None,
    on_estimate: OnEstimate | None,
) -> Readout:
    """Per-split, per-group readout of an intervention, with a random-neuron control.

    Returns a ``records.Readout``: per split a ``ReadoutSplit`` (``baseline`` / ``after``
    accuracies as fractions, ``delta_pp`` = (after − baseline)·100, ``spread_pp``), the
    control's splits and each draw's neurons, ``wga_quantum_pp`` and ``seconds``. ``after``
    is the mean over ``seeds`` seeds for reinit/noise (1 evaluation for zero), ``spread_pp``
    their std. The control: the same intervention on as many random eligible neurons,
    ``control_draws`` draws (draw d uses seed d), memoised per (k, mode, σ, where).

    Progressive (the folded fast path): each split is walked "stratified subsample, then
    the rest"; ``on_estimate`` gets the estimate first, the same record with ``estimate =
    True`` and ``ci_pp`` / ``sampled`` / ``of`` per split. The exact result (always what is
    returned) keeps it under ``estimate``, its time under ``seconds_to_estimate``.
    """
    started = time.monotonic()
    neurons = [(str(layer), int(index)) for layer, index in neurons]
    check_neurons(session._layers, neurons)
    check_mode(mode, std)
    if int(seeds) < 1:
        raise UserError(f"seeds = {seeds}: expected at least 1")
    for split in splits:
        session.bundle.split(split)
    base_seed = session.seed if seed is None else int(seed)
    repeats = 1 if mode == "zero" else int(seeds)
    ivs = [Intervention(tuple(neurons), mode, std, base_seed + s, where) for s in range(repeats)]
    result = Readout(
        label=label,
        mode=mode,
        std=None if mode == "zero" else float(std),
        seeds=repeats,
        where=where,
        neurons=list(neurons),
        splits={},
        control=None,
        control_neurons=[],
        wga_quantum_pp={s: session.wga_quantum_pp(s) for s in splits},
    )
    draws = int(control_draws) if control and control_draws > 0 else 0
    if supports(ivs[0]) and all(session.fast_evaluator(s) is not None for s in splits):
        result = progressive_readout(session, ivs, splits, result, draws, started, on_estimate)
    else:
        result.splits = plain_splits(session, ivs, splits)
        if draws:
            ctrl = random_control(session, len(neurons), mode, std, where, splits, draws)
            result.control, result.control_neurons = ctrl.splits, ctrl.control_neurons
    result.seconds = time.monotonic() - started
    return result


def plain_splits(session: Session, ivs: Sequence[Intervention], splits: Sequence[str]) -> dict[str, ReadoutSplit]:
    """Each split read out by one plain pass per intervention."""
    out = {}
    for split in splits:
        afters = [session.accuracy_after(split, iv) for iv in ivs]
        out[split] = ReadoutSplit.model_validate(summarise(session.group_names, session._baseline(split), afters))
    return out


def random_control(
    session: Session, count: int, mode: str, std: float, where: str, splits: Sequence[str], draws: int
) -> Readout:
    """The random-neuron control for ``count`` neurons (memoised): a readout whose ``splits``
    are over the draws (``after`` their mean, ``spread_pp`` their sd) and ``control_neurons``
    the neurons of each draw."""
    key = control_key(count, mode, std, where, splits, draws)
    if int(draws) < 1:
        raise UserError(f"control draws = {draws}: expected at least 1")
    if key not in session._controls:
        picks = control_picks(session, count, draws)
        ivs = control_interventions(Intervention(tuple(picks[0]), mode, std, 0, where), picks)
        if supports(ivs[0]) and all(session.fast_evaluator(s) is not None for s in splits):
            walked = walk.progressive(session, splits, [ivs], time.monotonic(), None)
            session._controls[key] = control_record(ivs[0], picks, walked.exacts[0], walked.estimates[0])
        else:
            session._controls[key] = control_record(ivs[0], picks, plain_splits(session, ivs, splits), None)
    return session._controls[key]


def control_record(
    like: Intervention,
    picks: Sequence[Sequence[NeuronRef]],
    splits: dict[str, ReadoutSplit],
    estimate: dict[str, ReadoutSplit] | None,
) -> Readout:
    return Readout(
        label=f"{len(like.neurons)} random neurons",
        mode=like.mode,
        std=None if like.mode == "zero" else float(like.std),
        seeds=len(picks),
        where=like.where,
        splits=splits,
        control_neurons=[[(str(layer), int(index)) for layer, index in p] for p in picks],
        estimate=False if estimate is None else Readout(splits=estimate),
    )


def control_key(count: int, mode: str, std: float, where: str, splits: Sequence[str], draws: int) -> ControlKey:
    return (count, mode, None if mode == "zero" else float(std), where, tuple(splits), int(draws))


def control_picks(session: Session, count: int, draws: int) -> list[list[NeuronRef]]:
    return [session.random_neurons(count, seed=session.seed * 7919 + 1000 * count + d) for d in range(draws)]


def control_interventions(like: Intervention, picks: Sequence[Sequence[NeuronRef]]) -> list[Intervention]:
    """Draw d applies ``like``'s mode, σ and target to its neurons, with seed d."""
    return [Intervention(tuple(p), like.mode, like.std, d, like.where) for d, p in enumerate(picks)]


def progressive_readout(
    session: Session,
    ivs: Sequence[Intervention],
    splits: Sequence[str],
    shell: Readout,
    draws: int,
    started: float,
    on_estimate: OnEstimate | None,
) -> Readout:
    """``shell`` (a readout without numbers) with the estimate-then-exact numbers of ``ivs``
    and, with ``draws`` > 0, of their random-neuron control, walked together over each split.
    ``on_estimate`` receives the estimate as a ``Readout`` with ``estimate = True``."""
    like = ivs[0]
    key = control_key(len(like.neurons), like.mode, like.std, like.where, splits, draws)
    picks = control_picks(session, len(like.neurons), draws) if draws > 0 else []
    ctrl_ivs = [] if draws <= 0 or key in session._controls else control_interventions(like, picks)

    def shown(estimates: list[walk.Splits], seconds: float) -> None:
        assert on_estimate is not None
        first = shell.model_copy(deep=True)
        first.splits, first.estimate, first.seconds = estimates[0], True, seconds
        if ctrl_ivs:  # a control computed in this walk has an estimate too (a memoised one is exact)
            first.control = estimates[1]
        on_estimate(first)

    walked = walk.progressive(session, splits, [ivs, ctrl_ivs], started, shown if on_estimate is not None else None)
    result = shell.model_copy(deep=True)
    result.splits = walked.exacts[0]
    result.seconds_to_estimate = walked.seconds_to_estimate
    estimate = Readout(splits=walked.estimates[0], control=None)
    if draws > 0:
        if key not in session._controls:
            session._controls[key] = control_record(like, picks, walked.exacts[1], walked.estimates[1])
        ctrl = session._controls[key]
        result.control, result.control_neurons = ctrl.splits, ctrl.control_neurons
        estimate.control = ctrl.first_estimate.splits if ctrl.first_estimate is not None else None
    result.estimate = estimate
    return result
