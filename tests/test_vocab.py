"""One vocabulary per option, one validator per kind of number, one number format, one device rule."""

from __future__ import annotations

import math
import sys
from typing import get_args

import pytest
import torch
from pydantic import ValidationError
from typer.testing import CliRunner

from labconsole.config import vocab
from labconsole.config.neurons import NeuronsConfig
from labconsole.errors import UserError
from labconsole.formatting import MISSING, pct, pm, pp


def test_choices_come_from_the_literal_types() -> None:
    assert vocab.MODES == ("zero", "reinit", "noise")
    assert vocab.SCOPES == ("global", "per-layer", "top-percent")
    assert set(vocab.SCOPE_ALIASES.values()) == set(vocab.SCOPES)
    with pytest.raises(TypeError):
        vocab.choices(int)


def test_preset_sections_and_console_use_the_same_names() -> None:
    from labconsole.presets import Preset
    from labconsole.ui import engine_port

    fields = NeuronsConfig.model_fields
    assert get_args(fields["modes"].annotation)[0] is vocab.Mode
    assert get_args(fields["criteria"].annotation)[0] is vocab.Criterion
    assert Preset.model_fields["device"].annotation is vocab.Device
    assert NeuronsConfig().stds == vocab.SIGMA_GRID
    assert engine_port.INTERVENTION_MODES == vocab.MODES
    assert engine_port.SCOPES == vocab.SCOPES
    assert engine_port.SIGMAS == vocab.SIGMA_GRID
    assert engine_port.DEVICES == vocab.DEVICES
    assert engine_port.RARE_PATTERNS == vocab.PATTERNS
    assert engine_port.BACKBONES == vocab.BACKBONES


def test_backbone_names_match_the_factory_registry() -> None:
    from labconsole.config.model import SMALL_BACKBONES
    from labconsole.engine.models.factory import list_backbones

    assert set(vocab.BACKBONES) == {b.name for b in list_backbones()}
    assert set(SMALL_BACKBONES) <= set(vocab.BACKBONES)


@pytest.mark.parametrize("bad", [0, -0.5, 100.5, math.nan, math.inf, True])
def test_one_percentage_rule(bad: float) -> None:
    with pytest.raises(vocab.InvalidValue, match=r"neurons\.top_percent"):
        vocab.check_percent(bad, key="neurons.top_percent")


def test_percentage_edges_and_a_meaningful_zero() -> None:
    assert vocab.check_percent(100, key="p") == 100.0
    assert vocab.check_percent(0.01, key="p") == 0.01
    assert vocab.check_percent(0, key="p", zero_means="no mask") == 0.0
    with pytest.raises(vocab.InvalidValue, match="or 0 for no mask"):
        vocab.check_percent(-1, key="p", zero_means="no mask")
    with pytest.raises(vocab.InvalidValue, match=r"\(0, 100\).*leaves the auxiliary model nothing"):
        vocab.check_percent(100, key="p", all_refused=vocab.MASK_ALL)


def test_validators_are_preset_errors_and_user_errors() -> None:
    # pydantic turns the ValueError into a message naming the key ...
    with pytest.raises(ValidationError, match=r"top-x % = 0.0: expected a percentage in \(0, 100\]"):
        NeuronsConfig(top_percent=(0.1, 0))
    with pytest.raises(ValidationError, match="σ must be > 0"):
        NeuronsConfig(stds=(0.01, 0.0))
    with pytest.raises(ValidationError, match="whole number ≥ 1"):
        NeuronsConfig(top_k=(0,))
    with pytest.raises(ValidationError, match="overlap_top_percent"):
        NeuronsConfig(overlap_top_percent=150)
    # ... and the engine raises the same check as a UserError (exit code 2).
    assert issubclass(vocab.InvalidValue, UserError) and issubclass(vocab.InvalidValue, ValueError)


def test_engine_ranking_uses_the_same_percentage_and_k_rules() -> None:
    from labconsole.engine.stage1.ranking import top_neurons

    scores = {"a": torch.arange(4.0), "b": torch.arange(6.0)}
    assert len(top_neurons(scores, "top-percent", 100)) == 10
    with pytest.raises(vocab.InvalidValue, match=r"expected a percentage in \(0, 100\]"):
        top_neurons(scores, "top-percent", 0)
    with pytest.raises(vocab.InvalidValue, match="larger than the number of eligible neurons"):
        top_neurons(scores, "global", 11)
    with pytest.raises(vocab.InvalidValue, match="whole number"):
        top_neurons(scores, "per-layer", 1.5)


def test_k_and_sigma() -> None:
    assert vocab.check_k(3.0, key="k") == 3
    assert vocab.check_sigma(0.005, key="σ") == 0.005
    for bad in (0, -1, math.nan):
        with pytest.raises(vocab.InvalidValue):
            vocab.check_sigma(bad, key="σ")


def test_one_number_format_and_missing_mark() -> None:
    from labconsole.cli import headless
    from labconsole.report import doc
    from labconsole.ui.screens import rare
    from labconsole.ui.widgets import readout_table

    for missing in (None, math.nan, math.inf, "n/a", True):
        assert pct(missing) == pp(missing) == MISSING
    assert pct(0.6403) == "64.0" and pp(-3.2) == "-3.20" and pp(1, signed=False) == "1.00"
    assert pm(-3.2, 0.41) == "-3.20 ± 0.41" and pm(-3.2, None) == "-3.20" and pm(None, 1) == MISSING
    # every surface that shows accuracies uses it
    for formatter in (doc.pct, headless.pct, readout_table.percent, rare.percent):
        assert formatter(None) == MISSING and formatter(0.5) == "50.0"
    assert doc.num(None) == MISSING


def test_one_device_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from labconsole.engine import api
    from labconsole.engine.device import resolve_device

    assert api.resolve_device is resolve_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(UserError, match="no CUDA device"):
        resolve_device("cuda:0")
    with pytest.raises(UserError, match="expected one of auto, cpu, cuda"):
        resolve_device("tpu")


def test_command_line_lists_and_enforces_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    from labconsole.cli.app import app, main

    wide = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}  # so a long list of choices is not wrapped
    help_text = " ".join(CliRunner().invoke(app, ["intervene", "--help"], env=wide).output.split())
    assert "<zero|reinit|noise>" in help_text and "<weight|output|post-bn>" in help_text
    assert "<train|val|test>" in help_text and "<auto|cpu|cuda>" in help_text
    rank_help = " ".join(CliRunner().invoke(app, ["rank", "--help"], env=wide).output.split())
    assert "<global|per-layer|top-percent>" in rank_help
    for argv in (["intervene", "run", "--neurons", "a:0", "--mode", "melt"], ["intervene", "run", "--split", "dev"]):
        monkeypatch.setattr(sys, "argv", ["labconsole", *argv])
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 2, argv


def test_one_rule_for_how_many_a_percentage_selects() -> None:
    assert vocab.count_of_percent(26_000, 0.01, rounding="up") == 3  # 2.6 neurons: the boundary one is in
    assert vocab.count_of_percent(26_000, 0.01, rounding="nearest") == 3
    assert vocab.count_of_percent(24_000, 0.01, rounding="nearest") == 2  # 2.4 weights, as torch prune
    assert vocab.count_of_percent(10, 0.01, rounding="up") == 1  # never none
    assert vocab.count_of_percent(10, 100, rounding="nearest") == 10
