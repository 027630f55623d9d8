"""`labconsole check-data` through Typer's CliRunner on tiny real-format dataset copies."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from conftest_data import make_celeba_kaggle, make_waterbirds_original

from labconsole.cli.data import register


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # keeps check-data a named sub-command, as in the real CLI
        pass

    register(app)
    return app


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def test_check_data_prints_counts_and_exits_0(app: typer.Typer, tmp_path: Path) -> None:
    root = make_waterbirds_original(tmp_path)
    result = CliRunner().invoke(app, ["check-data", str(root)])
    assert result.exit_code == 0, result.output
    assert "waterbirds" in result.output and "original" in result.output
    # Test split of the tiny copy has one image per group; the published test count of group 0 is 2255.
    assert "1 / 2255 (-2254)" in result.output
    assert "waterbird-water" in result.output
    assert "loads; group counts differ" in result.output


def test_check_data_json_with_forced_dataset(app: typer.Typer, tmp_path: Path) -> None:
    root = make_celeba_kaggle(tmp_path)
    result = CliRunner().invoke(app, ["check-data", str(root), "--dataset", "celeba", "--full", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["layout"] == "kaggle" and report["full"] is True
    assert [row["found"] for row in report["splits"]["train"]["groups"]] == [2, 1, 1, 2]


def test_check_data_exits_2_naming_the_missing_column(app: typer.Typer, tmp_path: Path) -> None:
    root = make_waterbirds_original(tmp_path)
    csv_path = root / "waterbird_complete95_forest2water2" / "metadata.csv"
    text = csv_path.read_text().replace("img_filename", "filename_of_image", 1)
    csv_path.write_text(text)
    result = CliRunner().invoke(app, ["check-data", str(root)])
    assert result.exit_code == 2
    assert "missing column `img_filename`" in result.output
    assert "Traceback" not in result.output


def test_check_data_exits_2_for_an_empty_folder_and_bad_dataset_name(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["check-data", str(tmp_path)])
    assert result.exit_code == 2
    assert "no Waterbirds or CelebA metadata" in result.output
    result = CliRunner().invoke(app, ["check-data", str(tmp_path), "--dataset", "imagenet"])
    assert result.exit_code == 2
    assert "'imagenet' is not one of 'waterbirds', 'celeba'" in " ".join(result.output.split())
