"""``bench session`` prints every step's target (time, least ratio) and whether it was met."""

from __future__ import annotations

from labconsole.engine.stage1.session_bench import MIN_RATIO, format_session, target_seconds


def _row(step: str, plain: float, fast: float) -> dict[str, object]:
    limit = target_seconds(step)
    ratio = plain / fast
    met = None if step.startswith("magnitude") else (limit is None or fast <= limit) and ratio >= MIN_RATIO
    target_ratio = None if step.startswith("magnitude") else MIN_RATIO
    return {
        "step": step,
        "plain_s": plain,
        "fast_s": fast,
        "ratio": ratio,
        "target_s": limit,
        "target_ratio": target_ratio,
        "met": met,
    }


def test_each_target_line_names_time_ratio_and_verdict() -> None:
    assert target_seconds("open") == 3.0
    assert target_seconds("gradient ranking, all groups (first)") == 2.0
    assert target_seconds("gradient ranking, all groups (again)") == 1.0
    assert target_seconds("zero top-3 conv1 (conv1), train+test, 3-draw control [exact]") == 4.0
    assert target_seconds("zero top-3 conv1 (conv1), train+test, 3-draw control [first numbers]") == 1.0
    assert target_seconds("zero top-3 conv1 again, cut cached, no control") == 4.0  # an exact readout
    assert target_seconds("zero top-3 last-stage conv again, cut cached, no control") == 0.2
    assert target_seconds("noise top-3 layer1.0.conv1, 10 seeds, train+test") is None
    result = {
        "run": "r",
        "threads": 2,
        "repeats": 3,
        "loadavg": "['0.1', '0.1', '0.1']",
        "same_numbers": {"x": True},
        "steps": [
            _row("open", 0.9, 0.02),
            _row("zero top-3 conv1 (conv1), train+test, 3-draw control [exact]", 10.0, 5.0),
            _row("noise top-3 layer1.0.conv1, 10 seeds, train+test", 9.0, 2.0),
            _row("magnitude ranking", 0.01, 0.01),
        ],
    }
    lines = format_session(result).splitlines()
    assert lines[2].endswith("≤ 3 s and ≥ 3×: met")
    assert lines[3].endswith("≤ 4 s and ≥ 3×: NOT met")  # 5 s and 2×
    assert lines[4].endswith("≥ 3×: met")
    assert lines[5].endswith("no target")
    assert lines[-1] == "exact numbers identical on both paths"
    result.update(dataset_cache="read from the run directory", baseline_logits="written before timing")
    lines = format_session(result).splitlines()
    assert lines[-2] == "exact numbers identical on both paths"
    assert lines[-1] == (
        "decoded dataset: read from the run directory; fast path's baseline logits: written before timing"
    )
