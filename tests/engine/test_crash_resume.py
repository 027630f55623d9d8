"""Crash-resume matrix: a run interrupted at any stage boundary or in the middle of a stage, then
resumed, ends identical to one that was never interrupted: summary, per-epoch metrics,
artifacts and the SHA-256 of every checkpoint.

Kills are injected in-process from the event stream: ``HardKill`` (a BaseException, so the
runner's handlers never see it: nothing is finalised, as after kill -9) or KeyboardInterrupt
(Ctrl-C: the runner saves and marks the run cancelled). One case kills a real subprocess with
SIGKILL. To stay cheap, each chain interrupts one run several times in a row, resuming after
each kill, and is compared once with a shared uninterrupted reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from labconsole.engine import events as ev
from labconsole.engine.api import run_job
from labconsole.engine.runs import RunDir
from labconsole.presets import load_preset

STAGES = ["erm", "neurons", "tracing", "finetune", "dfr", "gradcam"]
OVERRIDES = [
    f"stages={json.dumps(STAGES)}",
    "erm.epochs=2",
    "finetune.epochs=2",
    'neurons.include=["layer3.*"]',  # three layers: tracing stays a second long
    'neurons.groups=["landbird-water"]',
    "neurons.control_draws=1",
]
RARE_OVERRIDES = ['rare.patterns=["S3"]', "rare.n_spurious=[0, 3]", "rare.num_seeds=1", "rare.epochs=2"]
# Values that measure the wall clock, not the computation.
VOLATILE = {"seconds", "t", "elapsed_s", "eta_s", "created", "finished", "wall_s", "host"}


def volatile(key: str) -> bool:
    return key in VOLATILE or key.startswith("seconds") or key.endswith(("_s", "_seconds"))


class HardKill(BaseException):
    """Stands for kill -9: passes every ``except Exception`` and the runner's Ctrl-C handler."""


@dataclass(frozen=True)
class KillPoint:
    stage: str
    where: str  # "boundary" (the stage is about to start) or "mid"
    exc: type[BaseException]

    def hit(self, event: ev.Event) -> bool:
        if self.where == "boundary":
            return isinstance(event, ev.LogRecord) and event.message == f"stage {self.stage} started"
        if isinstance(event, ev.EpochResult):
            return event.stage == self.stage and event.epoch == 1
        if self.stage in ("neurons",):
            return isinstance(event, ev.ReadoutReady)
        if self.stage == "gradcam":
            return isinstance(event, ev.ArtifactWritten) and event.name == "gradcam"
        if self.stage == "dfr":
            return isinstance(event, ev.StageStarted) and event.stage == "dfr"
        return isinstance(event, ev.Progress) and event.stage == self.stage

    @property
    def label(self) -> str:
        return f"{self.stage}/{self.where}/{'kill -9' if self.exc is HardKill else 'Ctrl-C'}"


def killer(point: KillPoint) -> Callable[[ev.Event], None]:
    fired = []

    def emit(event: ev.Event) -> None:
        if not fired and point.hit(event):
            fired.append(event)
            raise point.exc()

    emit.fired = fired  # type: ignore[attr-defined]
    return emit


def smoke_preset() -> Any:
    return load_preset("quickstart", OVERRIDES, smoke=True)


def rare_preset() -> Any:
    return load_preset("rare/score-vs-n", RARE_OVERRIDES, smoke=True)


# -- what "identical" means -----------------------------------------------------------------------


def normalised(obj: Any, run: RunDir) -> Any:
    """JSON with the run's own path and name replaced and wall-clock values dropped."""
    if isinstance(obj, dict):
        return {k: normalised(v, run) for k, v in obj.items() if not volatile(k)}
    if isinstance(obj, list):
        return [normalised(v, run) for v in obj]
    if isinstance(obj, str):
        return obj.replace(str(run.path), "<run>").replace(run.name, "<run>")
    return obj


def epoch_metrics(run: RunDir) -> dict[tuple[str, int], Any]:
    """(stage, epoch) → loss and accuracies of the last record of that epoch (an epoch redone
    after a kill overwrites the one recorded before it)."""
    out: dict[tuple[str, int], Any] = {}
    for record in run.events("EpochResult"):
        out[(record["stage"], record["epoch"])] = {k: record[k] for k in ("train_loss", "splits", "is_best", "lr")}
    return out


def fingerprint(run: RunDir) -> dict[str, Any]:
    artifacts = {
        str(p.relative_to(run.path)): normalised(json.loads(p.read_text()), run)
        for p in sorted((run.path / "artifacts").rglob("*.json"))
    }
    return {
        "status": run.status(),
        "stages_done": run.manifest().get("stages_done"),
        "summary": normalised(run.summary(), run),
        "metrics": epoch_metrics(run),
        "artifacts": artifacts,
        "checkpoints": {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.checkpoints.glob("*.safetensors"))
        },
    }


def assert_identical(resumed: RunDir, reference: RunDir) -> None:
    got, want = fingerprint(resumed), fingerprint(reference)
    assert got["status"] == "done"
    assert got["checkpoints"] == want["checkpoints"]
    assert got["metrics"] == want["metrics"]
    assert got["artifacts"] == want["artifacts"]
    assert got["summary"] == want["summary"]
    assert got == want


def run_with_kills(preset: Any, root: Path, points: list[KillPoint]) -> tuple[RunDir, list[str]]:
    """Start ``preset``, interrupt it at each point in turn, resuming after each; then resume
    to the end. Returns the run and the points that fired."""
    fired: list[str] = []
    run: RunDir | None = None
    for point in points:
        emit = killer(point)
        try:
            result = run_job(preset, emit=emit, runs_root=root, resume=run.path if run else None)
        except HardKill:
            result = None
        if run is None:
            run = RunDir(next(p for p in root.iterdir() if p.is_dir()))
        assert emit.fired, f"kill point {point.label} was never reached"  # type: ignore[attr-defined]
        fired.append(point.label)
        if point.exc is HardKill:
            assert result is None and run.manifest()["status"] == "running"  # nothing was finalised
        else:
            assert result is not None and result.status() == "cancelled"
    assert run is not None
    final = run_job(preset, emit=lambda event: None, resume=run.path)
    assert final.status() == "done"
    return final, fired


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    # Module fixtures are set up before the function-scoped one-thread fixture: use one thread
    # here too, as the runs compared with it do (float sums depend on the thread count).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = run_job(smoke_preset(), emit=lambda event: None, runs_root=tmp_path_factory.mktemp("reference"))
    finally:
        torch.set_num_threads(threads)
    assert run.status() == "done"
    return run


CHAINS = {
    "kill -9 in-process": [
        KillPoint("erm", "mid", HardKill),
        KillPoint("neurons", "boundary", HardKill),
        KillPoint("tracing", "mid", HardKill),
        KillPoint("finetune", "mid", HardKill),
        KillPoint("dfr", "mid", HardKill),
        KillPoint("gradcam", "mid", HardKill),
    ],
    "Ctrl-C": [
        KillPoint("erm", "boundary", KeyboardInterrupt),
        KillPoint("neurons", "mid", KeyboardInterrupt),
        KillPoint("tracing", "boundary", KeyboardInterrupt),
        KillPoint("finetune", "boundary", KeyboardInterrupt),
        KillPoint("dfr", "boundary", KeyboardInterrupt),
        KillPoint("gradcam", "boundary", KeyboardInterrupt),
    ],
}


@pytest.mark.parametrize("chain", list(CHAINS))
def test_interrupted_at_every_stage_resumes_identical(chain: str, reference: RunDir, tmp_path: Path) -> None:
    resumed, fired = run_with_kills(smoke_preset(), tmp_path, CHAINS[chain])
    assert fired == [p.label for p in CHAINS[chain]]
    assert_identical(resumed, reference)


def test_sigkill_of_a_real_process_mid_finetune_resumes_identical(reference: RunDir, tmp_path: Path) -> None:
    """A real ``labconsole run`` killed with SIGKILL during fine-tuning, resumed to the end."""
    # The real command line, on one torch thread like the reference (float sums depend on it).
    one_thread = (
        "import torch, labconsole.engine.api as api; "
        "api.configure_threads = lambda keep_a_core: torch.set_num_threads(1); "
        "from labconsole.cli.app import main; main()"
    )
    command = [sys.executable, "-c", one_thread, "run", "quickstart", "--smoke", "--quiet", "--no-report"]
    command += [arg for item in OVERRIDES for arg in ("--set", item)] + ["--out", str(tmp_path)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            logs = list(tmp_path.glob("*/metrics.jsonl"))
            if logs and '"stage": "finetune", "epoch": 1' in logs[0].read_text():
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before fine-tuning: " + process.stderr.read().decode()[-2000:]
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        assert process.stderr is not None
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    run = RunDir(next(p for p in tmp_path.iterdir() if p.is_dir()))
    assert run.manifest()["status"] == "running" and "finetune" not in run.manifest()["stages_done"]
    resumed = run_job(smoke_preset(), emit=lambda event: None, resume=run.path)
    assert_identical(resumed, reference)


def test_rare_stage_interrupted_mid_stage_and_at_its_start_resumes_identical(tmp_path: Path) -> None:
    reference = run_job(rare_preset(), emit=lambda event: None, runs_root=tmp_path / "reference")
    (tmp_path / "chain").mkdir()
    points = [KillPoint("rare-score", "boundary", KeyboardInterrupt), KillPoint("rare-score", "mid", HardKill)]
    resumed, fired = run_with_kills(rare_preset(), tmp_path / "chain", points)
    assert fired == [p.label for p in points]
    assert_identical(resumed, reference)
