"""``labconsole rank`` and ``labconsole intervene``: Stage I from the command line, for scripts.

Both take a run directory (→ its ``checkpoints/best.safetensors``) or a checkpoint file; the
dataset is rebuilt from the run's ``config.toml`` (or the checkpoint sidecar's ``dataset``).
Bad input (unknown layer, index out of range, unknown group, σ ≤ 0, k too large) exits with 2.
"""

from __future__ import annotations

import json
from typing import Any

import typer


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def _open_session(run: str, device: str, data_root: str | None) -> Any:
    from labconsole.engine.stage1.session import Session, _resolve_device

    return Session.from_checkpoint(run, _resolve_device(device), data_root=data_root)


def register(app: typer.Typer) -> None:
    @app.command("rank")
    def rank(
        run: str = typer.Argument(..., help="run directory or checkpoint file"),
        criterion: str = typer.Option("gradient", "--criterion", help="magnitude | gradient | activation"),
        group: str | None = typer.Option(None, "--group", help="group name or index (gradient/activation)"),
        scope: str = typer.Option("global", "--scope", help="global | layer | percent (k is then a percentage)"),
        top_k: float = typer.Option(10, "--top-k", help="how many neurons (per layer for --scope layer)"),
        norm: str = typer.Option("l2", "--norm", help="l2 | l1"),
        per_layer_normalise: bool = typer.Option(
            False, "--per-layer-normalise", help="divide scores by their layer's mean first"
        ),
        as_json: bool = typer.Option(False, "--json", help="print [{layer, index, score}, …]"),
        device: str = typer.Option("auto", "--device", help="cpu | cuda | auto"),
        data_root: str | None = typer.Option(None, "--data-root", help="dataset folder for real datasets"),
    ) -> None:
        """Rank neurons of a trained model by magnitude, per-group gradient or activation."""
        from labconsole.errors import UserError

        try:
            session = _open_session(run, device, data_root)
            ranking = session.ranking(criterion, group, scope, top_k, norm, per_layer_normalise)
        except UserError as exc:
            _fail(exc)
            return
        items = [{"layer": layer, "index": index, "score": score} for layer, index, score in ranking.neurons]
        if as_json:
            typer.echo(json.dumps(items))
            return
        on = f" on {ranking.group}" if ranking.group else ""
        typer.echo(f"{criterion}{on}, scope {ranking.scope}, k={top_k:g}, {norm}")
        for n, item in enumerate(items, start=1):
            typer.echo(f"{n:>4}  {item['layer']}:{item['index']}  {item['score']:.6g}")

    @app.command("intervene")
    def intervene(
        run: str = typer.Argument(..., help="run directory or checkpoint file"),
        neurons: str = typer.Option(..., "--neurons", help="LAYER:INDEX,… e.g. layer3.0.conv2:5,layer2.0.conv1:0"),
        mode: str = typer.Option("zero", "--mode", help="zero | reinit | noise"),
        std: float = typer.Option(0.01, "--std", help="σ of the Gaussian for reinit / noise"),
        seeds: int = typer.Option(10, "--seeds", help="seeds for reinit / noise (mean and spread over seeds)"),
        split: list[str] = typer.Option([], "--split", help="train | test | val (repeatable; default train and test)"),
        where: str = typer.Option("weight", "--where", help="weight | output | post-bn"),
        control_draws: int = typer.Option(3, "--control-draws", help="random-neuron control draws (0 = none)"),
        as_json: bool = typer.Option(False, "--json", help="print the readout as JSON"),
        device: str = typer.Option("auto", "--device", help="cpu | cuda | auto"),
        data_root: str | None = typer.Option(None, "--data-root", help="dataset folder for real datasets"),
    ) -> None:
        """Apply an intervention to neurons and print the per-group readout (model restored after)."""
        from labconsole.engine.stage1.neurons import parse_neurons
        from labconsole.errors import UserError

        try:
            refs = parse_neurons(neurons)
            if mode != "zero" and not std > 0:
                raise UserError(f"--std {std}: the {mode} mode needs σ > 0")
            session = _open_session(run, device, data_root)
            result = session.readout(
                refs,
                mode=mode,
                std=std,
                seeds=seeds,
                splits=tuple(split) or ("train", "test"),
                where=where,
                control_draws=control_draws,
                control=control_draws > 0,
            )
        except UserError as exc:
            _fail(exc)
            return
        if as_json:
            typer.echo(json.dumps(result))
            return
        typer.echo(_readout_text(result))


def _readout_text(result: dict[str, Any]) -> str:
    sigma = f", σ={result['std']:g}, {result['seeds']} seeds" if result.get("std") else ""
    lines = [
        f"{result['mode']}{sigma} on {', '.join(f'{layer}:{i}' for layer, i in result['neurons'])} ({result['where']})"
    ]
    for split, table in result["splits"].items():
        lines.append(f"{split}:")
        control = (result.get("control") or {}).get(split)
        for group, base in table["baseline"].items():
            if base is None:
                continue
            text = (
                f"  {group:<20} {100 * base:6.2f}% → {100 * table['after'][group]:6.2f}%  "
                f"Δ {table['delta_pp'][group]:+6.2f} pp ± {table['spread_pp'][group]:.2f}"
            )
            if control:
                text += f"   control Δ {control['delta_pp'][group]:+6.2f} ± {control['spread_pp'][group]:.2f}"
            lines.append(text)
        quantum = (result.get("wga_quantum_pp") or {}).get(split)
        if quantum:
            lines.append(f"  (WGA quantum {quantum:.2f} pp)")
    return "\n".join(lines)
