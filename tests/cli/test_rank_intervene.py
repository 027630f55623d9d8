"""`labconsole rank` / `labconsole intervene` / `labconsole bench readout` through CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from labconsole.cli.bench import register as register_bench
from labconsole.cli.neurons import register


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # keeps the commands named sub-commands, as in the real CLI
        pass

    register(app)
    register_bench(app)
    return app


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smoke quickstart run (ERM only): config.toml + checkpoints/best.safetensors."""
    from labconsole.engine.api import run_job
    from labconsole.presets import load_preset

    torch.set_num_threads(1)
    preset = load_preset("quickstart", ['stages=["erm"]'], smoke=True)
    return run_job(preset, emit=lambda e: None, runs_root=tmp_path_factory.mktemp("runs")).path


def test_rank_json(app: typer.Typer, run_dir: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "rank",
            str(run_dir),
            "--criterion",
            "gradient",
            "--group",
            "waterbird-land",
            "--top-k",
            "3",
            "--json",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert len(items) == 3 and set(items[0]) == {"layer", "index", "score"}
    assert items[0]["score"] >= items[1]["score"] >= items[2]["score"]
    per_layer = CliRunner().invoke(
        app,
        [
            "rank",
            str(run_dir / "checkpoints" / "best.safetensors"),
            "--criterion",
            "magnitude",
            "--scope",
            "per-layer",
            "--top-k",
            "1",
            "--json",
            "--device",
            "cpu",
        ],
    )
    assert per_layer.exit_code == 0, per_layer.output
    assert len({item["layer"] for item in json.loads(per_layer.output)}) == 9


def test_intervene_json_and_text(app: typer.Typer, run_dir: Path) -> None:
    args = [
        "intervene",
        str(run_dir),
        "--neurons",
        "layer3.0.conv2:1,layer2.0.conv1:0",
        "--mode",
        "noise",
        "--std",
        "0.05",
        "--seeds",
        "2",
        "--split",
        "train",
        "--control-draws",
        "1",
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    readout = json.loads(result.output)
    assert list(readout["splits"]) == ["train"] and readout["seeds"] == 2
    assert readout["neurons"] == [["layer3.0.conv2", 1], ["layer2.0.conv1", 0]]
    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0 and "waterbird-land" in text.output and "control" in text.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["intervene", "{run}", "--neurons", "layer9.conv:0"], "unknown layer"),
        (["intervene", "{run}", "--neurons", "conv1:99"], "out of range"),
        (["intervene", "{run}", "--neurons", "conv1:0", "--mode", "noise", "--std", "0"], "σ"),
        (["rank", "{run}", "--group", "penguin-ice"], "unknown group"),
        (["rank", "{run}", "--criterion", "magnitude", "--top-k", "100000"], "larger than"),
        (["rank", "/nonexistent/run"], "not found"),
    ],
)
def test_bad_input_exits_2(app: typer.Typer, run_dir: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, [a.replace("{run}", str(run_dir)) for a in args] + ["--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_bench_readout_cli_runs_on_a_checkpoint(app: typer.Typer, run_dir: Path) -> None:
    result = CliRunner().invoke(
        app, ["bench", "readout", "--checkpoint", str(run_dir), "--device", "cpu", "--repeats", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["plain"]["same_accuracy_as_fast"] is True
    assert out["ratio_plain_over_fast"] > 0 and len(out["fast"]) == 3
