"""A ``Session``'s neuron scores: how one group's are computed, and, for a ranking that reports
its progress, the groups whose scores it needs, scored one after the other (the group's own for
the paper score, every group with training examples for the specificity score), each reported
as it is done."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labconsole.engine.stage1 import ranking as rk
from labconsole.engine.stage1.call_progress import CallProgress, rate_limited

if TYPE_CHECKING:
    from labconsole.engine.stage1.session import Session


def compute_scores(session: Session, criterion: str, group: str | None, norm: str) -> rk.Scores:
    """Every eligible neuron's score for ``group`` (None: the whole training split), uncached:
    magnitude needs no data; gradient and activation use the group's samples (``samples_for``)."""
    if criterion == "magnitude":
        return rk.magnitude_scores(session._layers, norm)
    index = session.samples_for(group)
    train = session.cache("train")
    cfg = session.config
    if criterion == "gradient":
        return rk.gradient_scores(
            session.model, session._layers, train, index, norm, cfg.grad_batch_size, bn_mode=cfg.gradient_bn
        )
    return rk.activation_scores(session.model, session._layers, train, index, cfg.batch_size)


def groups_needed(session: Session, criterion: str, group: str | int | None, score: str) -> list[str | None]:
    """The groups (None: the whole training split) whose scores a ranking reads."""
    if criterion == "magnitude":
        return [None]
    name = session.resolve_group(group)
    if score != "specific" or name is None:
        return [name]
    others: list[str | None] = [g for g in session.group_names if g != name and session.train_group_counts.get(g)]
    return [name, *others]


def score_groups(
    session: Session,
    criterion: str,
    group: str | int | None,
    norm: str,
    score: str,
    progress: CallProgress | None,
) -> None:
    """Compute (the session keeps them) the scores a ranking needs, one group at a time,
    calling ``progress(groups done, groups needed)`` after each (≤ ~10×/s; the last always)."""
    rk.check_criterion(criterion)
    needed = groups_needed(session, criterion, group, score)
    report = rate_limited(progress)
    for done, name in enumerate(needed, start=1):
        session.scores(criterion, name, norm)
        if report is not None:
            report(done, len(needed))
