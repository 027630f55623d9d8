"""How strongly does the embedded dataset show memorization of minority groups?

Trains ERM on synthetic-waterbirds for each data/model setting given with --config (a set of
`--set` overrides separated by commas) and each seed, then prints the minority groups' train
and test accuracy at the selected epoch and at the last epoch, and test WGA vs mean.

    python bench/synthetic_gap.py --seeds 0 1 2 --config "" --config "data.augment=false"
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from concurrent.futures import ProcessPoolExecutor


def one(args: tuple[str, int, str]) -> tuple[str, int, dict]:
    config, seed, out = args
    from labconsole.engine.api import run_job
    from labconsole.presets import load_preset

    overrides = [c for c in config.split(",") if c] + [f"seed={seed}", f"data.seed={seed}", 'stages=["erm"]']
    preset = load_preset("presets/quickstart.toml", overrides)
    run = run_job(preset, emit=lambda e: None, runs_root=out)
    last = [e for e in run.events("EpochResult")][-1]["splits"]
    return (
        config,
        seed,
        {"selected": run.summary()["splits"], "last": last, "epoch": run.summary()["selection"]["epoch"]},
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", action="append", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    configs = args.config or [""]
    out = tempfile.mkdtemp()
    jobs = [(c, s, out) for c in configs for s in args.seeds]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(one, jobs))
    groups = ("landbird-land", "landbird-water", "waterbird-land", "waterbird-water")
    for config in configs:
        rows = [r for c, _, r in results if c == config]
        print(f"\n== {config or 'defaults'} ({len(rows)} seeds)")
        for which in ("selected", "last"):
            for split in ("train", "test"):
                accs = [statistics.mean(100 * r[which][split]["groups"][g] for r in rows) for g in groups]
                wga = [100 * r[which][split]["wga"] for r in rows]
                mean = statistics.mean(100 * r[which][split]["mean"] for r in rows)
                sd = statistics.stdev(wga) if len(wga) > 1 else 0.0
                print(
                    f"{which:8s} {split:5s} "
                    + " ".join(f"{a:6.1f}" for a in accs)
                    + f" | WGA {statistics.mean(wga):5.1f} ± {sd:4.1f}  mean {mean:5.1f}"
                )
        print("selected epochs:", [r["epoch"] for r in rows])


if __name__ == "__main__":
    main()
