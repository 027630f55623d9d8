"""The decoded dataset kept in a run directory, so reopening the run does not rebuild it.

``<run>/cache/dataset-<key>.pt`` holds every split's uint8 images and labels (a plain dict of
tensors, loaded with ``weights_only=True``) and ``dataset-<key>.json`` the bundle's metadata.
The key hashes the resolved data config, so a changed config never reads a stale cache. Only
bundles whose splits are all in memory (embedded or decoded data) are cached; file-backed
datasets already use the decoder's own disk cache. Writes are atomic; a damaged file is rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict
from pathlib import Path

import torch

from labconsole.config.data import DataConfig
from labconsole.engine.data.groups import DatasetBundle, GroupInfo, SplitData

_FORMAT = 1


def data_key(data_config: DataConfig) -> str:
    """A short hash of the resolved data config (what the decoded dataset depends on)."""
    text = json.dumps({"format": _FORMAT, "data": data_config.model_dump(mode="json")}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_paths(run_dir: Path, data_config: DataConfig) -> tuple[Path, Path]:
    """(tensor file, metadata file) for ``data_config`` in ``run_dir``."""
    key = data_key(data_config)
    folder = Path(run_dir) / "cache"
    return folder / f"dataset-{key}.pt", folder / f"dataset-{key}.json"


def read_bundle(run_dir: Path, data_config: DataConfig) -> DatasetBundle | None:
    """The cached bundle, or None when there is none (or it cannot be read)."""
    tensors_file, meta_file = cache_paths(run_dir, data_config)
    if not tensors_file.is_file() or not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        tensors = torch.load(tensors_file, map_location="cpu", weights_only=True)
        splits = {
            name: SplitData(
                name=name,
                y=tensors[f"{name}.y"],
                a=tensors[f"{name}.a"],
                g=tensors[f"{name}.g"],
                images=tensors[f"{name}.images"],
            )
            for name in meta["splits"]
        }
        return DatasetBundle(
            name=str(meta["name"]),
            groups=GroupInfo(**{k: tuple(v) for k, v in meta["groups"].items()}),
            splits=splits,
            image_size=int(meta["image_size"]),
            channels=int(meta["channels"]),
            mean=tuple(float(v) for v in meta["mean"]),
            std=tuple(float(v) for v in meta["std"]),
            layout=str(meta["layout"]),
            root=meta.get("root"),
            check=dict(meta.get("check") or {}),
        )
    except Exception:  # damaged or from another version: rebuilt by the caller
        return None


def write_bundle(run_dir: Path, data_config: DataConfig, bundle: DatasetBundle) -> bool:
    """Store ``bundle`` in ``run_dir`` (atomic). False when it is not cacheable or not writable."""
    from labconsole.engine.runs import atomic_write_bytes

    if any(split.images is None for split in bundle.splits.values()):
        return False
    tensors: dict[str, torch.Tensor] = {}
    for name, split in bundle.splits.items():
        assert split.images is not None
        tensors.update(
            {f"{name}.y": split.y, f"{name}.a": split.a, f"{name}.g": split.g, f"{name}.images": split.images}
        )
    meta = {
        "name": bundle.name,
        "groups": {k: list(v) for k, v in asdict(bundle.groups).items()},
        "splits": list(bundle.splits),
        "image_size": bundle.image_size,
        "channels": bundle.channels,
        "mean": list(bundle.mean),
        "std": list(bundle.std),
        "layout": bundle.layout,
        "root": bundle.root,
        "check": bundle.check,
    }
    tensors_file, meta_file = cache_paths(run_dir, data_config)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, buffer)
    try:
        atomic_write_bytes(tensors_file, buffer.getvalue())
        atomic_write_bytes(meta_file, json.dumps(meta, default=str).encode())  # metadata last: marks complete
    except Exception:  # a read-only run folder only costs the next open a rebuild
        return False
    return True
