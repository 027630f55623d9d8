"""How a ``Session`` gets its model and data: from a checkpoint (its run's own dataset, read from
the run's decoded cache when it has one) or fresh weights on a dataset (the Setup screen).

Opening takes seconds (building the embedded dataset, reading a cache, loading weights), so it
checks a cancel token between chunks of that work (``OpenSteps``) and raises ``Cancelled`` at
the first check after the token is set. Nothing is left half-written: the run's dataset cache is
written only after the last check before it, with atomic writes, metadata last.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn

from labconsole.config.neurons import NeuronsConfig
from labconsole.engine.data.groups import DatasetBundle
from labconsole.engine.events import CancelToken, NeverCancelled
from labconsole.engine.stage1 import run_data_cache
from labconsole.errors import CheckpointError

if TYPE_CHECKING:
    from labconsole.config.data import DataConfig


class OpenSteps:
    """The check between two chunks of an open: calling it raises ``Cancelled`` once the token
    is set, so at most one chunk of work runs after a cancel."""

    def __init__(self, cancel: CancelToken | None = None) -> None:
        self.cancel: CancelToken = cancel or NeverCancelled()

    def __call__(self) -> None:
        if self.cancel.is_set():
            from labconsole.engine.context import Cancelled

            raise Cancelled("the session was not opened: cancelled")


class Opened(NamedTuple):
    """What opening a checkpoint gives a session."""

    model: nn.Module
    bundle: DatasetBundle
    neurons: NeuronsConfig | None  # the run's [neurons] section
    seed: int  # the run's seed
    run_dir: Path
    data_config: DataConfig  # the dataset's config, as it was built


def load_checkpoint_and_data(
    path_or_run_dir: str | Path,
    device: torch.device | str,
    *,
    data_root: str | None,
    run_cache: bool,
    progress: Callable[[str], None] | None,
    cancel: CancelToken | None = None,
) -> Opened:
    """The model, its dataset and its run's settings for a checkpoint."""
    from labconsole.engine.data.registry import load_dataset
    from labconsole.engine.models.checkpoint import load_checkpoint, read_sidecar, resolve_checkpoint

    step = OpenSteps(cancel)
    step()
    path = resolve_checkpoint(path_or_run_dir)
    meta = read_sidecar(path)
    data_cfg, preset_neurons, seed = data_config_for(path, meta, data_root)
    say = progress or (lambda _line: None)
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    step()
    bundle = run_data_cache.read_bundle(run_dir, data_cfg) if run_cache else None
    if bundle is None:
        say(f"building the {data_cfg.dataset} dataset")
        bundle = load_dataset(data_cfg, between_chunks=step)
        step()  # the last check before the cache: a cancelled open writes nothing
        if run_cache and run_data_cache.write_bundle(run_dir, data_cfg, bundle):
            say(f"dataset kept in {run_dir / 'cache'} for the next open")
    else:
        say(f"dataset read from {run_dir / 'cache'}")
    step()
    if meta.get("group_names") and tuple(meta["group_names"]) != tuple(bundle.groups.group_names):
        raise CheckpointError(
            f"{path} was trained on groups {meta['group_names']}, the dataset has {list(bundle.groups.group_names)}"
        )
    say(f"loading {path.name}")
    model, _ = load_checkpoint(path, device)
    return Opened(model, bundle, preset_neurons, seed, run_dir, data_cfg)


def fresh_model_and_data(
    dataset: str, data_root: str, backbone: str, cancel: CancelToken | None = None
) -> tuple[nn.Module, DatasetBundle]:
    """Fresh weights of ``backbone`` on ``dataset`` at the backbone's image size (32 px for the
    small models on the embedded data)."""
    from labconsole.config.data import DataConfig
    from labconsole.engine.data.registry import load_dataset
    from labconsole.engine.models.factory import backbone_info, create_model

    step = OpenSteps(cancel)
    step()
    info = backbone_info(backbone)
    size = 32 if info.family == "small" and dataset == "synthetic-waterbirds" else info.default_image_size
    bundle = load_dataset(DataConfig(dataset=dataset, root=data_root, image_size=size), between_chunks=step)
    step()
    model = create_model(backbone, bundle.groups.num_classes, in_channels=bundle.channels, image_size=bundle.image_size)
    return model, bundle


def auto_cut_budget(device: torch.device) -> int:
    """Memory for cached activations per split: 1 GiB on a CPU, a quarter of free GPU memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free) // 4
    return 1 << 30


def data_config_for(
    path: Path, meta: dict[str, Any], data_root: str | None
) -> tuple[DataConfig, NeuronsConfig | None, int]:
    """The dataset a checkpoint was made on: its run's config.toml, else its sidecar."""
    from labconsole.config.data import DataConfig

    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    config_file = run_dir / "config.toml"
    if config_file.exists():
        from labconsole.presets import load_preset

        preset = load_preset(config_file)
        data = preset.data if not data_root else preset.data.model_copy(update={"root": data_root})
        if meta.get("dataset") and meta["dataset"] != data.dataset and not data.is_embedded:
            data = DataConfig(dataset=meta["dataset"], root=data_root or data.root, image_size=data.image_size)
        return data, preset.neurons, preset.seed
    if not meta.get("dataset"):
        raise CheckpointError(
            f"{path}: no run config.toml next to it and no `dataset` in its JSON sidecar, "
            "so the dataset it was trained on is unknown"
        )
    try:
        data = DataConfig(dataset=meta["dataset"], root=data_root or "", image_size=int(meta.get("image_size", 32)))
    except Exception as exc:
        raise CheckpointError(f"{path}: sidecar dataset {meta['dataset']!r} is not usable ({exc})") from None
    return data, None, 0
