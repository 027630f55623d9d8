"""The random-neuron control of a ``Session`` readout: as many neurons drawn uniformly from all
eligible neurons, the same intervention applied to each draw, computed once per (count, mode,
σ, where, splits, draws) and reused (the layer-matched control lives in ``evidence``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from labconsole.engine.stage1 import session_walk as walk
from labconsole.engine.stage1.folding import supports
from labconsole.engine.stage1.interventions import Intervention
from labconsole.engine.stage1.neurons import NeuronRef
from labconsole.engine.stage1.readout import summarise
from labconsole.errors import UserError

if TYPE_CHECKING:
    from labconsole.engine.stage1.session import Session


def random_control(
    session: Session, count: int, mode: str, std: float, where: str, splits: Sequence[str], draws: int
) -> dict[str, Any]:
    """The random-neuron control for ``count`` neurons (memoised)."""
    key = control_key(count, mode, std, where, splits, draws)
    if int(draws) < 1:
        raise UserError(f"control draws = {draws}: expected at least 1")
    if key not in session._controls:
        picks = control_picks(session, count, draws)
        ivs = control_interventions(Intervention(tuple(picks[0]), mode, std, 0, where), picks)
        if supports(ivs[0]) and all(session.fast_evaluator(s) is not None for s in splits):
            est, exact = walk.progressive(session, splits, [ivs], {}, time.monotonic(), None)
            entry = {"splits": exact[0], "estimate": est[0]}
        else:
            entry = {"splits": {}}
            for split in splits:
                afters = [session.accuracy_after(split, iv) for iv in ivs]
                entry["splits"][split] = summarise(session.group_names, session._baseline(split), afters)
        session._controls[key] = {**entry, "neurons": [[list(n) for n in p] for p in picks]}
    return session._controls[key]


def control_key(count: int, mode: str, std: float, where: str, splits: Sequence[str], draws: int) -> tuple[Any, ...]:
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
    result: dict[str, Any],
    draws: int,
    started: float,
    on_estimate: Callable[[dict[str, Any]], None] | None,
) -> None:
    """Fill ``result`` (a readout's shell) with the estimate-then-exact numbers of ``ivs`` and,
    with ``draws`` > 0, of their random-neuron control, walked together over each split."""
    like = ivs[0]
    key = control_key(len(like.neurons), like.mode, like.std, like.where, splits, draws)
    picks = control_picks(session, len(like.neurons), draws) if draws > 0 else []
    ctrl_ivs = [] if draws <= 0 or key in session._controls else control_interventions(like, picks)
    est, exact = walk.progressive(session, splits, [ivs, ctrl_ivs], result, started, on_estimate)
    result["splits"] = exact[0]
    result["estimate"] = {"splits": est[0], "control": None}
    if draws > 0:
        if key not in session._controls:
            session._controls[key] = {
                "splits": exact[1],
                "neurons": [[list(n) for n in p] for p in picks],
                "estimate": est[1],
            }
        ctrl = session._controls[key]
        result["control"], result["control_neurons"] = ctrl["splits"], ctrl["neurons"]
        result["estimate"]["control"] = ctrl.get("estimate")
