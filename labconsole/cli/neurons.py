"""``labconsole rank`` and ``labconsole intervene``: Stage I from the command line, for scripts.

Both take a run directory (→ its ``checkpoints/best.safetensors``) or a checkpoint file; the
dataset is rebuilt from the run's ``config.toml`` (or the checkpoint sidecar's ``dataset``).
Bad input (unknown layer, index out of range, unknown group, σ ≤ 0, k too large) exits with 2.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from labconsole.config.vocab import DEFAULT_SIGMA, SPLITS, Criterion, Device, Mode, Norm, Scope, Where

if TYPE_CHECKING:
    from labconsole.engine.records.sections import Readout


def _splits(values: list[str]) -> list[str]:
    """Typer takes no list of a Literal: the choices are checked here, with the same vocabulary."""
    unknown = [v for v in values if v not in SPLITS]
    if unknown:
        raise typer.BadParameter(f"{', '.join(map(repr, unknown))}: expected one of {', '.join(SPLITS)}")
    return values


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def _open_session(run: str, device: str, data_root: str | None) -> Any:
    from labconsole.engine.device import resolve_device
    from labconsole.engine.stage1.session import Session

    return Session.from_checkpoint(run, resolve_device(device), data_root=data_root)


def register(app: typer.Typer) -> None:
    @app.command("rank")
    def rank(
        run: str = typer.Argument(..., help="run directory or checkpoint file"),
        criterion: Criterion = typer.Option("gradient", "--criterion", help="what the score measures"),
        group: str | None = typer.Option(None, "--group", help="group name or index (gradient/activation)"),
        scope: Scope = typer.Option("global", "--scope", help="over the model, per layer, or k is a percentage"),
        top_k: float = typer.Option(10, "--top-k", help="how many neurons (per layer for --scope per-layer)"),
        norm: Norm = typer.Option("l2", "--norm", help="norm of a neuron's slice"),
        per_layer_normalise: bool = typer.Option(
            False, "--per-layer-normalise", help="divide scores by their layer's mean first"
        ),
        specific: bool = typer.Option(
            False,
            "--specific",
            help="rank by group specificity: the group's score relative to the other groups', layer scale removed",
        ),
        as_json: bool = typer.Option(False, "--json", help="print [{layer, index, score}, …]"),
        device: Device = typer.Option("auto", "--device", help="where to compute"),
        data_root: str | None = typer.Option(None, "--data-root", help="dataset folder for real datasets"),
    ) -> None:
        """Rank neurons of a trained model by magnitude, per-group gradient or activation."""
        from labconsole.errors import UserError

        try:
            session = _open_session(run, device, data_root)
            ranking = session.ranking(
                criterion, group, scope, top_k, norm, per_layer_normalise, score="specific" if specific else "paper"
            )
        except UserError as exc:
            _fail(exc)
            return
        items = [{"layer": layer, "index": index, "score": score} for layer, index, score in ranking.neurons]
        if as_json:
            typer.echo(json.dumps(items))
            return
        on = f" on {ranking.group}" if ranking.group else ""
        typer.echo(f"{criterion}{on}, scope {ranking.scope}, k={top_k:g}, {norm}, score {ranking.score}")
        for n, item in enumerate(items, start=1):
            typer.echo(f"{n:>4}  {item['layer']}:{item['index']}  {item['score']:.6g}")

    @app.command("intervene")
    def intervene(
        run: str = typer.Argument(..., help="run directory or checkpoint file"),
        neurons: str = typer.Option(..., "--neurons", help="LAYER:INDEX,… e.g. layer3.0.conv2:5,layer2.0.conv1:0"),
        mode: Mode = typer.Option("zero", "--mode", help="what happens to the neurons"),
        std: float = typer.Option(DEFAULT_SIGMA, "--std", help="σ of the Gaussian for reinit / noise"),
        seeds: int = typer.Option(10, "--seeds", help="seeds for reinit / noise (mean and spread over seeds)"),
        split: list[str] = typer.Option(
            [],
            "--split",
            metavar="<" + "|".join(SPLITS) + ">",
            callback=_splits,
            help="repeatable; default train and test",
        ),
        where: Where = typer.Option("weight", "--where", help="where the intervention acts"),
        control_draws: int = typer.Option(20, "--control-draws", help="control draws (0 = none)"),
        control: str = typer.Option(
            "layer-matched", "--control", help="layer-matched (same neurons per layer) | anywhere"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the readout as JSON"),
        device: Device = typer.Option("auto", "--device", help="where to compute"),
        data_root: str | None = typer.Option(None, "--data-root", help="dataset folder for real datasets"),
    ) -> None:
        """Apply an intervention to neurons and print the per-group readout (model restored after)."""
        from labconsole.config.vocab import check_sigma
        from labconsole.engine.stage1.neurons import parse_neurons
        from labconsole.errors import UserError

        try:
            refs = parse_neurons(neurons)
            if mode != "zero":
                check_sigma(std, key=f"--std (σ of the {mode} mode)")
            session = _open_session(run, device, data_root)
            result = session.readout(
                refs,
                mode=mode,
                std=std,
                seeds=seeds,
                splits=tuple(split) or ("train", "test"),
                where=where,
                control=False,
            )
            if control_draws > 0:
                from labconsole.engine.stage1.evidence import evidence_readout, with_evidence

                found = evidence_readout(
                    session,
                    refs,
                    mode=mode,
                    std=std,
                    seeds=seeds,
                    where=where,
                    splits=tuple(split) or ("train", "test"),
                    draws=control_draws,
                    kind=control,
                )
                result = with_evidence(result, found, control)
        except UserError as exc:
            _fail(exc)
            return
        if as_json:
            typer.echo(json.dumps(result.to_json()))
            return
        typer.echo(_readout_text(result))


def _pp(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _readout_text(result: Readout) -> str:
    sigma = f", σ={result.std:g}, {result.seeds} seeds" if result.std else ""
    lines = [f"{result.mode}{sigma} on {', '.join(f'{n[0]}:{n[1]}' for n in result.neurons)} ({result.where})"]
    found = result.evidence
    for split, table in result.splits.items():
        lines.append(f"{split}:")
        control = result.control_split(split)
        for group, base in table.baseline.items():
            after = table.after.get(group)
            if base is None or after is None:
                continue
            text = (
                f"  {group:<20} {100 * base:6.2f}% → {100 * after:6.2f}%  "
                f"Δ {_pp(table.delta_pp.get(group), '+6.2f')} pp ± {_pp(table.spread_pp.get(group), '.2f')}"
            )
            if control:
                text += (
                    f"   control Δ {_pp(control.delta_pp.get(group), '+6.2f')}"
                    f" ± {_pp(control.spread_pp.get(group), '.2f')}"
                )
                p = found.p.get(split, {}).get(group) if found is not None else None
                if p is not None:
                    text += f"  p = {p:.3f}"
            lines.append(text)
        quantum = result.wga_quantum_pp.get(split)
        if quantum:
            lines.append(f"  (WGA quantum {quantum:.2f} pp)")
    if found is not None:
        from labconsole.engine.stage1.evidence import verdict_line

        lines.append(f"control: {result.control_kind}, {found.draws} draws")
        line = verdict_line(found.signature, result.group_names())
        if line:
            lines.append(line)
    return "\n".join(lines)
