"""Stage I pipeline stages (Paper A §2.1): the model under study, and unstructured tracing.

Stages (see ``labconsole.engine.stages``):
* ``model``: the model Stage I studies. With ``model.checkpoint`` set it loads that checkpoint
  and records its per-group accuracies; without one it trains it by ERM (the ``erm`` stage), so
  a preset listing ``stages = ["model", "neurons"]`` runs on a given checkpoint as well as in
  ``--smoke`` (where the checkpoint is cleared and a tiny ERM takes a few seconds).
* ``neurons``: for every criterion × ranked group × k (and top-x %) × mode × σ × where, apply
  the intervention to the selected neurons and read out per-group accuracy on train and test,
  next to a random-neuron control. Rows go to ``artifacts/stage1_readouts.json``; a compact
  table goes to summary.json; ``RankingReady`` / ``ReadoutReady`` events are emitted.
* ``tracing`` and ``overlap`` live in ``labconsole.engine.stage1.tracing``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from labconsole.config.neurons import NeuronsConfig
from labconsole.engine.context import StageContext
from labconsole.engine.events import ArtifactWritten, RankingReady, ReadoutReady, StageStarted
from labconsole.engine.pipeline import ensure_dataset, ensure_model, evaluate_metrics
from labconsole.engine.records.sections import ModelSection, NeuronsSection, ReadoutRow
from labconsole.engine.stage1.evidence import evidence_readout, format_evidence, with_evidence
from labconsole.engine.stage1.evidence_flips import flip_thumbnails
from labconsole.engine.stage1.run_baselines import BaselineStore
from labconsole.engine.stage1.run_data_cache import data_key
from labconsole.engine.stage1.session import Session
from labconsole.errors import PresetError, UserError
from labconsole.formatting import pct, pp

READOUTS_ARTIFACT = "artifacts/stage1_readouts.json"


# -- shared helpers ----------------------------------------------------------------------------


def session_for(ctx: StageContext) -> Session:
    """The run's Stage I session (one per run: rankings, baselines and cut caches are shared
    between the neurons, tracing and overlap stages)."""
    if "session" not in ctx.state:
        if "checkpoint" not in ctx.state and not ctx.preset.model.checkpoint:
            raise PresetError(
                f'stage `{ctx.stage}` needs a trained model: list "model" (or "erm") before it in '
                "`stages`, or give one with --set model.checkpoint=RUN_DIR_OR_FILE"
            )
        bundle = ensure_dataset(ctx)  # also keeps the decoded data in the run directory
        model = ensure_model(ctx)
        # The baseline logits stay in the run directory: the console opening this run starts from them.
        store = BaselineStore(ctx.run.path, data_key(ctx.preset.data))
        session = Session(
            model,
            bundle,
            ctx.device,
            config=ctx.preset.neurons,
            cancel=ctx.cancel,
            seed=ctx.preset.seed,
            baselines=store,
        )
        session._caches.update(ctx.state.get("caches", {}))  # reuse the ERM stage's tensor caches
        ctx.state["session"] = session
    found: Session = ctx.state["session"]
    return found


def ranked_groups(session: Session, names: tuple[str, ...]) -> list[str]:
    """The groups to rank on: ``neurons.groups`` (names or indices), or all groups."""
    if not names:
        return list(session.group_names)
    return [session.group_names[session.bundle.groups.resolve(n)] for n in names]


def check_splits(session: Session, splits: tuple[str, ...], key: str) -> tuple[str, ...]:
    for split in splits:
        if split not in session.bundle.splits:
            raise UserError(
                f"{key}: dataset {session.bundle.name!r} has no split {split!r} "
                f"(has: {', '.join(session.bundle.splits)})"
            )
    return splits


def minority_groups(session: Session) -> list[str]:
    """The smaller half of the groups by training count (Waterbirds: landbird-water, waterbird-land)."""
    counts = session.train_group_counts
    ordered = sorted(counts, key=lambda g: counts[g])
    return ordered[: len(ordered) // 2]


def interventions(cfg: NeuronsConfig) -> Iterator[tuple[str, float | None, str]]:
    """(mode, σ, where) combinations of the config; σ is None for zero."""
    for mode in cfg.modes:
        for std in (None,) if mode == "zero" else cfg.stds:
            for where in cfg.where:
                yield mode, std, where


# -- stage: model ------------------------------------------------------------------------------


def run_model_stage(ctx: StageContext) -> ModelSection:
    """Load ``model.checkpoint`` (and evaluate it), or train one by ERM when none is given."""
    if not ctx.preset.model.checkpoint:
        from labconsole.engine.train.erm import train_erm

        ctx.log("no model.checkpoint given: training one by ERM first")
        trained = train_erm(ctx)
        return ModelSection(source="erm", splits=trained.splits, selection=trained.selection, epochs=trained.epochs)
    from labconsole.engine.models.checkpoint import resolve_checkpoint

    path = resolve_checkpoint(ctx.preset.model.checkpoint)
    model = ensure_model(ctx)
    ctx.state["checkpoint"] = path
    return ModelSection(source="checkpoint", checkpoint=str(path), splits=evaluate_metrics(ctx, model))


# -- stage: neurons (unstructured tracing) -----------------------------------------------------


def run_neurons_stage(ctx: StageContext) -> NeuronsSection:
    cfg = ctx.preset.neurons
    session = session_for(ctx)
    splits = check_splits(session, cfg.splits, "neurons.splits")
    groups = ranked_groups(session, cfg.groups)
    plan = _plan(cfg, groups)
    ctx.emit(StageStarted(run_id=ctx.run_id, stage=ctx.stage, total_epochs=1))
    started = time.monotonic()
    rows: list[ReadoutRow] = []
    for step, (selection, mode, std, where) in enumerate(plan, start=1):
        ctx.check_cancel()
        neurons, label = _select(ctx, session, cfg, selection)
        result = session.readout(
            neurons, mode=mode, std=std or 0.01, seeds=cfg.seeds, splits=splits, where=where, control=False, label=label
        )
        if cfg.control_draws > 0:  # the control, its p, the signature and the flips: one evaluation path
            found = evidence_readout(
                session,
                neurons,
                mode=mode,
                std=std or 0.01,
                seeds=cfg.seeds,
                where=where,
                splits=splits,
                draws=cfg.control_draws,
                kind=cfg.control,
                seed=ctx.preset.seed * 7919 + step,
            )
            result = with_evidence(result, found, cfg.control)
        row = ReadoutRow.model_validate({**asdict(selection), **result.model_dump(exclude_unset=True)})
        rows.append(row)
        ctx.emit(ReadoutReady(run_id=ctx.run_id, readout=result))
        ctx.progress(epoch=1, total_epochs=1, step=step, total_steps=len(plan), started=started, message=label)
    baseline = {s: session.baseline(s) for s in splits}
    artifact = {
        "baseline": baseline,
        "group_names": list(session.group_names),
        "minority_groups": minority_groups(session),
        "rows": [row.to_json() for row in rows],
    }
    path = ctx.run.write_json(READOUTS_ARTIFACT, artifact)
    _write_flip_thumbnails(ctx, session, rows)
    ctx.emit(
        ArtifactWritten(
            run_id=ctx.run_id,
            name="stage1_readouts",
            path=str(path),
            description="Stage I readouts: per-group change on train and test, with control",
        )
    )
    summary = NeuronsSection(
        baseline=baseline,
        minority_groups=minority_groups(session),
        wga_quantum_pp={s: session.wga_quantum_pp(s) for s in splits},
        rows=[row.compact() for row in rows],
        artifact=READOUTS_ARTIFACT,
        seconds=time.monotonic() - started,
    )
    kinds = sorted({row.control_kind for row in summary.rows if row.control_kind})
    control = f"control = {' / '.join(kinds)} draws" if kinds else "no control"
    ctx.log(f"Stage I readouts (change vs baseline, pp; {control}, mean ± sd)\n" + format_table(summary))
    if any(row.evidence for row in rows):
        ctx.log(
            f"Stage I evidence ({cfg.control} control, {cfg.control_draws} draws)\n" + format_evidence(rows, groups)
        )
    return summary


def _write_flip_thumbnails(ctx: StageContext, session: Session, rows: list[ReadoutRow]) -> None:
    """``artifacts/flips/readout-NNN.png``: the minority training images each readout flipped."""
    from labconsole.engine.runs import atomic_write_bytes

    for n, row in enumerate(rows):
        if not row.evidence:
            continue
        png = flip_thumbnails(session, row.evidence, minority_groups(session))
        if png is not None:
            atomic_write_bytes(ctx.run.path / "artifacts" / "flips" / f"readout-{n:03d}.png", png)


@dataclass(frozen=True)
class NeuronSelection:
    """Which neurons one readout row edits: the top ``k`` (or top ``percent`` %) by
    ``criterion``, ranked on ``ranked_group`` (None: a global ranking) with ``score``; or, for
    ``criterion = "random"``, ``k`` random neurons. The row records these as they are."""

    criterion: str
    ranked_group: str | None
    k: int | None
    percent: float | None
    score: str = "paper"


def _plan(cfg: NeuronsConfig, groups: list[str]) -> list[tuple[NeuronSelection, str, float | None, str]]:
    selections: list[NeuronSelection] = []
    for criterion in cfg.criteria:
        for group in [None] if criterion == "magnitude" else groups:
            # Each row records which score ranked it: the configured one for a group's ranking.
            score = cfg.score if criterion in ("gradient", "activation") and group else "paper"
            selections += [NeuronSelection(criterion, group, k, None, score) for k in cfg.top_k]
            selections += [NeuronSelection(criterion, group, None, p, score) for p in cfg.top_percent]
    selections += [NeuronSelection("random", None, k, None) for k in cfg.random_k]
    return [(sel, mode, std, where) for sel in selections for mode, std, where in interventions(cfg)]


def _select(
    ctx: StageContext, session: Session, cfg: NeuronsConfig, sel: NeuronSelection
) -> tuple[list[tuple[str, int]], str]:
    """The neurons of one selection (rankings are computed once and emitted once)."""
    if sel.criterion == "random":
        count = sel.k if sel.k is not None else 0  # ``_plan`` gives every random selection its k
        picked = session.random_neurons(count, seed=ctx.preset.seed + 4242 + count)
        return picked, f"random {sel.k}"
    emitted = ctx.state.setdefault("emitted_rankings", set())
    on = f" on {sel.ranked_group}" if sel.ranked_group else ""
    if sel.score == "specific":
        on += " (specific)"
    if sel.percent is not None:
        ranking = session.ranking(
            sel.criterion,
            sel.ranked_group,
            "top-percent",
            sel.percent,
            cfg.norm,
            cfg.per_layer_normalise,
            score=sel.score,
        )
        label = f"{sel.criterion}{on} top {sel.percent:g}%"
        neurons = list(ranking.neurons)
    else:
        # One global ranking up to the largest k; top-k is its first k entries.
        ranking = session.ranking(
            sel.criterion,
            sel.ranked_group,
            "global",
            max(cfg.top_k),
            cfg.norm,
            cfg.per_layer_normalise,
            score=sel.score,
        )
        label = f"{sel.criterion}{on} top-{sel.k}"
        neurons = list(ranking.neurons)[: sel.k]
    key = (ranking.criterion, ranking.group, ranking.scope, ranking.k, ranking.score)
    if key not in emitted:
        emitted.add(key)
        ctx.emit(
            RankingReady(
                run_id=ctx.run_id,
                criterion=ranking.criterion,
                group=ranking.group,
                scope=ranking.scope,
                neurons=ranking.neurons,
                samples_used=ranking.samples_used,
            )
        )
    return [(layer, index) for layer, index, _ in neurons], label


def format_table(summary: NeuronsSection) -> str:
    """Plain-text Stage I table: per readout one line per split (Δpp per group); the random
    control is printed under the first readout it belongs to (it depends only on k and mode)."""
    rows = summary.rows
    if not rows:
        return "(no readouts)"
    splits = list(rows[0].delta_pp)
    groups = list(rows[0].delta_pp[splits[0]])
    width = max(15, *(len(g) for g in groups))
    lines = [f"{'readout':<40} {'split':<6}" + "".join(f" {g:>{width}}" for g in groups)]
    base = summary.baseline
    for split in splits:
        lines.append(
            f"{'baseline accuracy (%)':<40} {split:<6}"
            + "".join(f" {pct(base.get(split, {}).get(g)):>{width}}" for g in groups)
        )
    shown_controls: set[str] = set()
    for row in rows:
        where = "" if row.where == "weight" else f" [{row.where}]"
        sigma = f" σ={row.std:g}" if row.std else ""
        name = f"{row.label} {row.mode}{sigma}{where}"
        for i, split in enumerate(splits):
            lines.append(
                f"{(name if i == 0 else ''):<40.40} {split:<6}"
                + "".join(f" {pp(row.delta_pp[split][g]):>{width}}" for g in groups)
            )
        control_key = repr(row.control_delta_pp)
        if row.control_delta_pp and control_key not in shown_controls:
            shown_controls.add(control_key)
            for i, split in enumerate(splits):
                drawn = f"{row.control_draws} draws of " if row.control_draws else ""
                label = f"  control: {drawn}{len(row.neurons)}, {row.control_kind or 'random'}" if i == 0 else ""
                lines.append(
                    f"{label:<40.40} {split:<6}"
                    + "".join(
                        f" {pp(row.control_delta_pp[split][g]) + '±' + pp(row.control_spread_pp[split][g], signed=False):>{width}}"
                        for g in groups
                    )
                )
    return "\n".join(lines)
