"""One entry point for every dataset: ``load_dataset(DataConfig) -> DatasetBundle``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from labconsole.config.data import DataConfig
from labconsole.engine.data.groups import DatasetBundle
from labconsole.errors import DataError


def data_root(cfg: DataConfig) -> Path:
    root = cfg.root or os.environ.get("LABCONSOLE_DATA", "")
    if not root:
        raise DataError(
            f"dataset {cfg.dataset!r} needs a data folder: set data.root in the preset, "
            "pass --data-root PATH, or export LABCONSOLE_DATA=PATH"
        )
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"data folder not found: {path} (from data.root / --data-root / $LABCONSOLE_DATA)")
    return path


def load_dataset(cfg: DataConfig, *, between_chunks: Callable[[], None] | None = None) -> DatasetBundle:
    """``cfg`` is a ``labconsole.config.data.DataConfig``. ``between_chunks`` is called between
    chunks of a build that takes seconds (the embedded Waterbirds), so a cancel can stop it there
    by raising; the file-backed datasets decode later, when their images are first read."""
    name = cfg.dataset
    if name == "synthetic-waterbirds":
        from labconsole.engine.data.synthetic import build_synthetic_waterbirds

        return build_synthetic_waterbirds(cfg, between_chunks=between_chunks)
    if name == "waterbirds":
        from labconsole.engine.data.waterbirds import load_waterbirds

        return load_waterbirds(data_root(cfg), image_size=cfg.image_size, max_per_split=cfg.max_per_split)
    if name == "celeba":
        from labconsole.engine.data.celeba import load_celeba

        return load_celeba(data_root(cfg), image_size=cfg.image_size, max_per_split=cfg.max_per_split)
    if name in ("digits", "digits-color"):
        from labconsole.engine.data.digits import load_digits_dataset

        return load_digits_dataset(cfg)
    if name in ("mnist", "fashion-mnist", "cifar10"):
        from labconsole.engine.data.torchvision_folders import load_torchvision_folder

        return load_torchvision_folder(name, data_root(cfg), cfg)
    raise DataError(f"unknown dataset {name!r}")
