"""Shared fixtures: offline, small, CPU-only."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LABCONSOLE_DECODE_CACHE", "0")

import pytest


@pytest.fixture(scope="session")
def smoke_preset():
    from labconsole.presets import load_preset

    return load_preset("presets/quickstart.toml", smoke=True)


@pytest.fixture(scope="session")
def smoke_bundle(smoke_preset):
    from labconsole.engine.data.registry import load_dataset

    return load_dataset(smoke_preset.data)


@pytest.fixture(scope="session")
def trained_smoke_run(tmp_path_factory, smoke_preset):
    """One finished smoke ERM run, shared by tests that need a checkpoint."""
    from labconsole.engine.api import run_job
    from labconsole.presets import load_preset

    preset = load_preset("presets/quickstart.toml", ['stages=["erm"]'], smoke=True)
    root = tmp_path_factory.mktemp("runs")
    return run_job(preset, emit=lambda e: None, runs_root=root)
