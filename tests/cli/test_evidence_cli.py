"""`labconsole rank --specific` and `labconsole intervene` with the layer-matched control."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from labconsole.cli.neurons import register
from labconsole.engine.runs import RunDir


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        pass

    register(app)
    return app


def test_rank_specific_records_its_score(app: typer.Typer, trained_smoke_run: RunDir) -> None:
    base = ["rank", str(trained_smoke_run.path), "--group", "waterbird-land", "--top-k", "5", "--device", "cpu"]
    paper = CliRunner().invoke(app, base)
    specific = CliRunner().invoke(app, [*base, "--specific"])
    assert paper.exit_code == 0 and specific.exit_code == 0, specific.output
    assert "score paper" in paper.output and "score specific" in specific.output
    bad = CliRunner().invoke(app, ["rank", str(trained_smoke_run.path), "--criterion", "magnitude", "--specific"])
    assert bad.exit_code == 2 and "specificity" in bad.output


def test_intervene_json_has_the_matched_control_p_signature_and_flips(
    app: typer.Typer, trained_smoke_run: RunDir
) -> None:
    args = ["intervene", str(trained_smoke_run.path), "--neurons", "conv1:0,layer2.0.conv1:1,layer2.0.conv1:2"]
    args += ["--control-draws", "4", "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    readout = json.loads(result.output)
    assert readout["control_kind"] == "layer-matched"
    found = readout["evidence"]
    assert found["histogram"] == {"conv1": 1, "layer2.0.conv1": 2}
    for draw in readout["control_neurons"]:
        assert sorted(layer for layer, _ in draw) == ["conv1", "layer2.0.conv1", "layer2.0.conv1"]
    assert set(found["p"]) == {"train", "test"} and found["signature"]["verdict"]
    assert set(found["flips"]["train"]["waterbird-land"]) >= {"to_wrong", "to_right", "n_to_wrong", "n_to_right"}
    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0 and "p = " in text.output and "memorization signature" in text.output
