"""ERM end to end on tiny copies of the real dataset formats (file-backed training path)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest_data import make_celeba_kaggle, make_waterbirds_original

from labconsole.engine.api import run_job
from labconsole.presets import load_preset


@pytest.mark.parametrize("dataset,make", [("waterbirds", make_waterbirds_original), ("celeba", make_celeba_kaggle)])
def test_erm_trains_from_image_files(tmp_path: Path, dataset: str, make) -> None:
    root = make(tmp_path / "data")
    preset = load_preset(
        "presets/quickstart.toml",
        [
            'stages=["erm"]',
            f"data.dataset={dataset}",
            "data.image_size=32",
            "data.num_workers=0",
            "data.augment=true",
            "erm.epochs=1",
            "erm.batch_size=4",
            "model.width=4",
        ],
        data_root=str(root),
    )
    run = run_job(preset, emit=lambda e: None, runs_root=tmp_path / "runs")
    assert run.is_done
    manifest = run.manifest()
    assert manifest["dataset"]["name"] == dataset
    assert manifest["dataset_check"]["layout"]
    test = run.summary()["splits"]["test"]
    assert sum(test["group_counts"].values()) == test["n"] > 0
