"""The evidence sections render what the run recorded: controls with p, the signature verdict,
flipped examples with their ERM loss, and fine-tuning against its start (epoch 0)."""

from __future__ import annotations

import json
from pathlib import Path

from labconsole.engine.stage1.evidence_stats import signature
from labconsole.report import build_report, write_report
from tests.report.report_fixtures import GROUPS, make_run, tiny_png


def _evidence() -> dict[str, object]:
    critical = {
        "train": {g: (-30.0 if g == "waterbird-land" else -1.0) for g in GROUPS},
        "test": {g: (-0.5 if g == "waterbird-land" else -1.0) for g in GROUPS},  # within the draws' spread
    }
    draws = {s: {g: [-1.0, -2.0, 0.0, -1.0] * 5 for g in GROUPS} for s in ("train", "test")}
    flips = {
        s: {
            g: {
                "n": 8,
                "n_to_wrong": 3 if g == "waterbird-land" else 0,
                "n_to_right": 0,
                "to_wrong": [4, 5, 6] if g == "waterbird-land" else [],
                "to_right": [],
                "to_wrong_loss": [0.012, 0.034, 0.101] if g == "waterbird-land" else [],
                "to_wrong_margin": [4.1, 3.2, 2.0] if g == "waterbird-land" else [],
                "to_right_loss": [],
                "to_right_margin": [],
                "group_mean_loss": 0.4,
            }
            for g in GROUPS
        }
        for s in ("train", "test")
    }
    return {
        "kind": "layer-matched",
        "draws": 20,
        "histogram": {"layer1.conv1": 1},
        "critical": critical,
        "draws_pp": draws,
        "p": {s: {g: (1 / 21 if critical[s][g] < -2 else 0.5) for g in GROUPS} for s in critical},
        "signature": signature(critical, draws, GROUPS).to_json(),  # type: ignore[union-attr]
        "flips": flips,
    }


def _run(tmp_path: Path) -> Path:
    run = make_run(tmp_path, stage1=False, extras=False)
    row = {
        "label": "gradient on waterbird-land top-3",
        "mode": "zero",
        "control_kind": "layer-matched",
        "control": {
            s: {"delta_pp": {g: -0.8 for g in GROUPS}, "spread_pp": {g: 0.7 for g in GROUPS}} for s in ("train", "test")
        },
        "evidence": _evidence(),
    }
    run.write_json(
        "artifacts/stage1_readouts.json",
        {"group_names": GROUPS, "minority_groups": ["landbird-water", "waterbird-land"], "rows": [row]},
    )
    (run.artifacts / "flips").mkdir(parents=True, exist_ok=True)
    (run.artifacts / "flips" / "readout-000.png").write_bytes(tiny_png())
    summary = json.loads((run.path / "summary.json").read_text())
    summary["finetune"] = {
        "method": "NT-Xent + 0.2·MSE",
        "selection": {"rule": "best val WGA", "epoch": 1, "val_wga": 0.3},
        "wga_before": {"val": 0.6, "test": 0.55},
        "wga_after": {"val": 0.3, "test": 0.2},
        "warning": "fine-tuning never beat its start on val: best val WGA over epochs 1–2 30.0 % ≤ start 60.0 %",
        "beat_start_on_val": False,
        "control": {"method": "continued ERM: 0·NT-Xent + 0.2·MSE", "wga_after": {"val": 0.593, "test": 0.627}},
        "method_minus_control": {"val": 0.3 - 0.593, "test": 0.2 - 0.627},
        "mask_realised": "p = 0.01 % of 336 neurons → 1 neuron (0.30 %)",
        "history": [
            {"epoch": 0, "train_loss": None, "val_wga": 0.6, "test_wga": 0.55},
            {"epoch": 1, "train_loss": 0.5, "val_wga": 0.3, "test_wga": 0.2, "masked": "1 neurons in 1 layers"},
            {"epoch": 2, "train_loss": 0.4, "val_wga": 0.1, "test_wga": 0.05, "masked": "1 neurons in 1 layers"},
        ],
    }
    run.write_summary(summary)
    return run.path


def test_evidence_sections_render_control_p_signature_flips_and_the_start(tmp_path: Path) -> None:
    path = _run(tmp_path)
    report = build_report(path)
    titles = [s.title for s in report.sections]
    assert "Stage I evidence: controls, significance, signature, flipped examples" in titles
    assert "Fine-tuning against its start (epoch 0)" in titles
    md = Path(next(p for p in write_report(path) if str(p).endswith(".md"))).read_text()
    assert "-30.0 [-0.8 ± 0.7] p = 0.048" in md  # critical Δ [control mean ± sd] p
    assert "memorization signature (Δtrain − Δtest):" in md
    assert "seen for waterbird-land (-29.5 pp, p = 0.048)" in md and "not seen for landbird-water" in md
    assert "0.012" in md and "+4.100" in md  # a flipped example's ERM loss and margin
    assert "flipped minority training images" in md
    assert "never beat its start on val" in md
    assert "p = 0.01 % of 336 neurons → 1 neuron (0.30 %)" in md
    assert "start" in md and "★ selected" in md
    assert "continued ERM (control)" in md and "62.7" in md and "-42.7" in md  # method − control, pp


def test_sweep_recipes_are_read_against_their_own_control() -> None:
    from types import SimpleNamespace

    from labconsole.report.evidence_sections import control_for, recipes_vs_control

    recipes = {"paper", "continued-erm", "bn-frozen", "continued-erm-bn-frozen"}
    assert control_for("paper", recipes) == "continued-erm"
    assert control_for("bn-frozen", recipes) == "continued-erm-bn-frozen"
    assert control_for("continued-erm", recipes) is None

    def run(test_wga: float) -> SimpleNamespace:
        finetune = SimpleNamespace(wga_after={"test": test_wga})
        return SimpleNamespace(is_done=True, summary=SimpleNamespace(finetune=finetune))

    values = {"paper": [0.147, 0.263, 0.263], "continued-erm": [0.847, 0.753, 0.723]}
    runs = [({"recipe": r, "seed": s}, f"{r}-s{s}", run(v[s])) for r, v in values.items() for s in range(3)]
    src = SimpleNamespace(runs=runs, index=SimpleNamespace(axes={"recipe": ["paper", "continued-erm"]}))
    section = recipes_vs_control(src)  # type: ignore[arg-type]
    assert section is not None
    row = section.blocks[0].rows[0]  # type: ignore[union-attr]
    assert row[:2] == ["paper", "continued-erm"]
    diffs = [100 * (a - b) for a, b in zip(values["paper"], values["continued-erm"])]
    mean = sum(diffs) / 3
    assert row[4].startswith(f"{mean:+.1f} ± ") and row[6] == 3
    assert float(row[5]) < 0.05  # three seeds, all much worse than the control
