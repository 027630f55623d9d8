from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

LABCONSOLE = [sys.executable, "-m", "labconsole.cli"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*LABCONSOLE, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd or Path.cwd(),
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )


def test_run_smoke_prints_table_and_writes_run(tmp_path: Path) -> None:
    result = cli(
        "run", "presets/quickstart.toml", "--smoke", "--set", 'stages=["erm"]', "--out", str(tmp_path), "--no-report"
    )
    assert result.returncode == 0, result.stderr
    assert "landbird-water" in result.stdout and "wga" in result.stdout
    runs = list(tmp_path.iterdir())
    assert len(runs) == 1 and (runs[0] / "done").exists()
    listing = cli("runs", str(tmp_path))
    assert listing.returncode == 0 and "quickstart" in listing.stdout and "done" in listing.stdout


@pytest.mark.parametrize(
    "args,needle",
    [
        (["run", "presets/nope.toml"], "preset file not found"),
        (["run", "presets/quickstart.toml", "--set", "erm.epochz=3"], "unknown key `erm.epochz`"),
        (["run", "presets/quickstart.toml", "--set", "erm.epochs=ten"], "erm.epochs"),
        (
            ["run", "presets/quickstart.toml", "--set", "data.dataset=waterbirds", "--data-root", "/nonexistent/wb"],
            "data folder not found",
        ),
        (
            ["run", "presets/quickstart.toml", "--set", "model.checkpoint=/nonexistent/best.safetensors"],
            "checkpoint not found",
        ),
    ],
)
def test_bad_input_exits_2_with_one_message(args: list[str], needle: str, tmp_path: Path) -> None:
    result = cli(*args, "--out", str(tmp_path)) if args[0] == "run" else cli(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_checkpoint_for_another_architecture(trained_smoke_run, tmp_path: Path) -> None:
    ckpt = trained_smoke_run.path / "checkpoints" / "best.safetensors"
    # Not --smoke: the smoke profile swaps in its own tiny model and drops model.checkpoint.
    result = cli(
        "run",
        "presets/quickstart.toml",
        "--set",
        'stages=["erm"]',
        "--set",
        "model.backbone=cifar_resnet20",
        "--set",
        f"model.checkpoint={ckpt}",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 2
    assert "cifar_resnet8" in result.stderr and "cifar_resnet20" in result.stderr
    assert "Traceback" not in result.stderr
