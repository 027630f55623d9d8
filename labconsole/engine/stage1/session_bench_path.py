"""One path of ``bench session``, in a process of its own: the console's Stage I calls, timed.

    python -m labconsole.engine.stage1.session_bench_path '{"path": "fast", "run": "runs/…", …}'

prints one JSON object: the seconds of every step, the neurons each readout used and its exact
numbers (so the parent can check that both paths agree). Each path gets a fresh process so each
runs with the process state a user of it has: the fast path with the allocator setting of the
command-line entry points (``allocator.keep_freed_memory``), the plain path without it, as the
console ran before.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from labconsole.engine.records.sections import Readout
from labconsole.engine.stage1.folding import FoldedModel
from labconsole.engine.stage1.session import Session


class PlainSession(Session):
    """The session without the folded fast path: every readout goes the plain way."""

    def folded(self) -> FoldedModel | None:
        return None


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def _rank_all(session: Session, fresh: bool) -> None:
    if fresh:
        session._scores.clear()
        session._samples.clear()
    for group in session.group_names:
        session.rank("gradient", group=group, k=3)


def choose_probes(session: Session) -> dict[str, Any]:
    """The minority group and the three layers the readouts probe, with the top-3 neurons the
    session's gradient ranking gives each (both paths then read out the same neurons)."""
    counts = session.train_group_counts
    minority = min(counts, key=lambda name: counts[name])
    names = [name for name, _, _ in session.layers()]
    last_stage = [n for n in names if n.split(".")[0] == names[-1].split(".")[0]]
    layer1 = next((n for n in names if n.startswith("layer1")), names[1])
    layers = {"conv1": names[0], "layer1 conv": layer1, "last-stage conv": last_stage[-1]}
    refs = {
        label: [list(r) for r in session.ranking("gradient", minority, "per-layer", 3, layers=[layer]).refs()]
        for label, layer in layers.items()
    }
    return {"minority": minority, "layers": layers, "refs": refs}


def flat_numbers(readout: Readout) -> list[float]:
    """Every exact accuracy of a readout and its control, in a fixed order (NaN for none)."""
    out: list[float] = []
    for block in (readout.splits, readout.control or {}):
        for split in sorted(block):
            after = block[split].after
            for name in sorted(after):
                value = after[name]
                out.append(float("nan") if value is None else float(value))
    return out


def measure_path(path: str, run_dir: Path, seeds: int, probes: dict[str, Any] | None) -> dict[str, Any]:
    """Seconds of every step on ``path`` ("fast" or "plain"); ``probes`` from the fast path's
    run (None: choose them here, untimed)."""
    steps: dict[str, float] = {}
    numbers: dict[str, list[float]] = {}
    cls, run_cache = (Session, True) if path == "fast" else (PlainSession, False)
    steps["open"], session = _timed(partial(cls.from_checkpoint, run_dir, "cpu", run_cache=run_cache))
    steps["gradient ranking, all groups (first)"] = _timed(partial(_rank_all, session, False))[0]
    steps["gradient ranking, all groups (again)"] = _timed(partial(_rank_all, session, True))[0]
    steps["magnitude ranking"] = _timed(partial(session.rank, "magnitude", k=3))[0]
    probes = probes or choose_probes(session)
    for label, layer in probes["layers"].items():
        refs = [(str(name), int(index)) for name, index in probes["refs"][label]]
        session._controls.clear()  # each readout pays for its control
        first: list[float] = []
        t0 = time.perf_counter()

        def seen(_estimate: Readout, t0: float = t0, first: list[float] = first) -> None:
            first.append(time.perf_counter() - t0)

        seconds, result = _timed(partial(session.readout, refs, "zero", control_draws=3, on_estimate=seen))
        step = f"zero top-3 {label} ({layer}), train+test, 3-draw control"
        steps[step + " [exact]"] = seconds
        if first:  # only a progressive readout shows numbers before its exact ones
            steps[step + " [first numbers]"] = first[0]
        numbers[step] = flat_numbers(result)
        steps[f"zero top-3 {label} again, cut cached, no control"] = _timed(
            partial(session.readout, refs, "zero", control=False)
        )[0]
    layer1 = probes["layers"]["layer1 conv"]
    refs = [(str(name), int(index)) for name, index in probes["refs"]["layer1 conv"]]
    session._controls.clear()
    seconds, result = _timed(partial(session.readout, refs, "noise", std=0.01, seeds=seeds, control=False))
    steps[f"noise top-3 {layer1}, {seeds} seeds, train+test"] = seconds
    numbers["noise"] = flat_numbers(result)
    session.close()
    return {"path": path, "steps": steps, "numbers": numbers, "probes": probes}


def main(argv: list[str]) -> None:
    args = json.loads(argv[0])
    torch.set_num_threads(int(args["threads"]))
    if args["path"] == "fast":
        from labconsole.engine.allocator import keep_freed_memory

        keep_freed_memory()
    from labconsole.engine.stage1.session_bench import ensure_run_cache

    # Untimed, in this process: imports and the in-process pieces a dataset rebuild reuses are
    # warm for both paths alike (the run's decoded dataset is already on disk).
    ensure_run_cache(Path(args["run"]))
    result = measure_path(args["path"], Path(args["run"]), int(args["seeds"]), args.get("probes"))
    print(json.dumps(result, allow_nan=True))


if __name__ == "__main__":
    main(sys.argv[1:])
