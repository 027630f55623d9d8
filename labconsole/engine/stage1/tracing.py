"""Structured tracing (Paper A §2.1.2, Figure 7) and the criterion overlap (Figure 3).

``tracing``: for every eligible layer, rank its neurons (per criterion; per group for the
group-dependent criteria), zero its top ``tracing_k`` and read out every group's change. The
Figure 7 matrix (layers × groups) holds, for a group-dependent criterion, the change of group g
when zeroing the neurons ranked on g; for magnitude, the change of each group. A control matrix
zeroes as many random neurons of the same layer. Saved as JSON; the report draws the heat map.

``overlap``: for the top ``overlap_top_percent`` % neurons by gradient (per group), their
percentile rank by magnitude among all neurons of their layer type; and the reverse. Saved as
JSON; the report draws the histograms.
"""

from __future__ import annotations

import time

import torch

from labconsole.config.neurons import NeuronsConfig
from labconsole.engine.context import StageContext
from labconsole.engine.events import ArtifactWritten, StageStarted
from labconsole.engine.records.sections import OverlapKind, OverlapSection, TracingSection
from labconsole.engine.stage1.interventions import Intervention
from labconsole.engine.stage1.ranking import percentile_ranks, top_neurons
from labconsole.engine.stage1.readout import summarise
from labconsole.engine.stage1.session import Session
from labconsole.engine.stage1.stages import check_splits, minority_groups, ranked_groups, session_for

TRACING_JSON = "artifacts/stage1_tracing.json"
OVERLAP_JSON = "artifacts/stage1_overlap.json"

# Δpp per group name (``None`` where a group has no example in the split).
GroupDeltas = dict[str, float | None]
# One traced layer of one ranked group: {"layer": name, <split>: GroupDeltas, ...}.
TracedLayer = dict[str, str | GroupDeltas]


def run_tracing_stage(ctx: StageContext) -> TracingSection:
    cfg = ctx.preset.neurons
    session = session_for(ctx)
    splits = check_splits(session, cfg.tracing_splits, "neurons.tracing_splits")
    groups = ranked_groups(session, cfg.groups)
    layers = [name for name, _, n in session.layers() if n >= cfg.tracing_k]
    names = list(session.group_names)
    ctx.emit(StageStarted(run_id=ctx.run_id, stage=ctx.stage, total_epochs=1))
    started = time.monotonic()
    total = len(layers) * (sum(1 if c == "magnitude" else len(groups) for c in cfg.criteria) + 1)
    step = 0
    # matrices[criterion][split] = rows (layers) × cols (groups) of Δpp; full[criterion][ranked
    # group]["layers"] keeps every measured group for every ranked group.
    matrices: dict[str, dict[str, list[list[float | None]]]] = {}
    full: dict[str, dict[str, dict[str, list[TracedLayer]]]] = {}
    for criterion in [*cfg.criteria, "control"]:
        matrices[criterion] = {s: [] for s in splits}
        full[criterion] = {}
        for layer in layers:
            ctx.check_cancel()
            by_ranked: dict[str | None, dict[str, GroupDeltas]] = {}
            for group in [None] if criterion in ("magnitude", "control") else groups:
                step += 1
                by_ranked[group] = _zero_layer_readout(session, criterion, group, layer, cfg, splits, ctx.preset.seed)
                ctx.progress(
                    epoch=1,
                    total_epochs=1,
                    step=step,
                    total_steps=total,
                    started=started,
                    message=f"{criterion} {layer}",
                    # The first and last steps always get through the rate limit, so a short
                    # tracing stage still shows its n/N and its end.
                    force=step in (1, total),
                )
            for split in splits:
                if None in by_ranked:
                    row = [by_ranked[None][split][g] for g in names]
                else:
                    row = [by_ranked[g][split][g] if g in by_ranked else None for g in names]
                matrices[criterion][split].append(row)
            for group, per_split in by_ranked.items():
                traced: TracedLayer = {"layer": layer}
                traced.update({s: per_split[s] for s in splits})
                full[criterion].setdefault(group or "all", {}).setdefault("layers", []).append(traced)
    result = {
        "layers": layers,
        "groups": names,
        "k": cfg.tracing_k,
        "splits": list(splits),
        "minority_groups": minority_groups(session),
        "matrices": matrices,
        "by_ranked_group": full,
    }
    json_path = ctx.run.write_json(TRACING_JSON, result)
    ctx.emit(
        ArtifactWritten(
            run_id=ctx.run_id,
            name="stage1_tracing",
            path=str(json_path),
            description="structured tracing: layers × groups change (pp)",
        )
    )
    # summary.json keeps the matrices; the splits and every ranked group are in the artifact.
    return TracingSection(
        layers=layers,
        groups=names,
        k=cfg.tracing_k,
        matrices=matrices,
        artifacts=[TRACING_JSON],
        seconds=time.monotonic() - started,
    )


def _zero_layer_readout(
    session: Session,
    criterion: str,
    group: str | None,
    layer: str,
    cfg: NeuronsConfig,
    splits: tuple[str, ...],
    seed: int,
) -> dict[str, GroupDeltas]:
    """Δpp per split and group when zeroing the layer's top-k (or, for the control, as many
    random neurons of the same layer, averaged over ``control_draws`` draws)."""
    k = cfg.tracing_k
    if criterion == "control":
        n = dict((name, n) for name, _, n in session.layers())[layer]
        draws = max(1, cfg.control_draws)
        picks = [
            torch.randperm(n, generator=torch.Generator().manual_seed(seed * 31 + d))[:k].tolist() for d in range(draws)
        ]
        out: dict[str, GroupDeltas] = {}
        for split in splits:
            afters = [
                session.accuracy_after(split, Intervention(tuple((layer, i) for i in p), "zero", where="weight"))
                for p in picks
            ]
            out[split] = summarise(session.group_names, session._baseline(split), afters)["delta_pp"]
        return out
    ranking = session.ranking(criterion, group, "per-layer", k, cfg.norm, False, layers=[layer])
    result = session.readout(ranking.refs(), mode="zero", splits=splits, control=False)
    return {split: result.splits[split].delta_pp for split in splits}


# -- overlap (Figure 3) --------------------------------------------------------------------------


def run_overlap_stage(ctx: StageContext) -> OverlapSection:
    cfg = ctx.preset.neurons
    session = session_for(ctx)
    groups = ranked_groups(session, cfg.groups)
    edges = [100.0 * i / cfg.overlap_bins for i in range(cfg.overlap_bins + 1)]
    kinds: dict[str, list[str]] = {}
    for name, kind, _ in session.layers():
        kinds.setdefault(kind, []).append(name)
    magnitude = session.scores("magnitude", None, cfg.norm)
    # The artifact keeps each direction's ranks per group; summary.json only their histograms.
    ranks: dict[str, dict[str, object]] = {}
    histograms: dict[str, OverlapKind] = {}
    for kind, names in kinds.items():
        mag_rank = percentile_ranks(magnitude, names)
        top_mag = top_neurons(magnitude, "top-percent", cfg.overlap_top_percent, names)
        grad_by_mag: dict[str, list[float]] = {}
        mag_by_grad: dict[str, list[float]] = {}
        for group in groups:
            ctx.check_cancel()
            gradient = session.scores("gradient", group, cfg.norm)
            grad_rank = percentile_ranks(gradient, names)
            top_grad = top_neurons(gradient, "top-percent", cfg.overlap_top_percent, names)
            grad_by_mag[group] = [mag_rank[(layer, index)] for layer, index, _ in top_grad]
            mag_by_grad[group] = [grad_rank[(layer, index)] for layer, index, _ in top_mag]
        n_neurons = sum(len(magnitude[n]) for n in names)
        grad_hist, mag_hist = _histogram(grad_by_mag, edges), _histogram(mag_by_grad, edges)
        ranks[kind] = {
            "n_neurons": n_neurons,
            "top_gradient_by_magnitude_rank": {"per_group": grad_by_mag, "histogram": grad_hist},
            "top_magnitude_by_gradient_rank": {"per_group": mag_by_grad, "histogram": mag_hist},
        }
        histograms[kind] = OverlapKind(
            n_neurons=n_neurons, top_gradient_by_magnitude_hist=grad_hist, top_magnitude_by_gradient_hist=mag_hist
        )
    artifact = {"bins": edges, "top_percent": cfg.overlap_top_percent, "kinds": ranks}
    json_path = ctx.run.write_json(OVERLAP_JSON, artifact)
    ctx.emit(
        ArtifactWritten(
            run_id=ctx.run_id,
            name="stage1_overlap",
            path=str(json_path),
            description="overlap of gradient and magnitude criteria (percentile ranks)",
        )
    )
    return OverlapSection(bins=edges, top_percent=cfg.overlap_top_percent, kinds=histograms, artifacts=[OVERLAP_JSON])


def _histogram(per_group: dict[str, list[float]], edges: list[float]) -> list[int]:
    counts = [0] * (len(edges) - 1)
    for ranks in per_group.values():
        for r in ranks:
            counts[min(len(counts) - 1, int(r / 100.0 * len(counts)))] += 1
    return counts
