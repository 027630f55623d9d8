"""MNIST, Fashion-MNIST and CIFAR-10 from a local folder in torchvision's on-disk format.

Nothing is downloaded. Accepted layouts (``root`` is data.root / --data-root):
- MNIST: ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (optionally ``.gz``);
  Fashion-MNIST the same under ``root/FashionMNIST/raw/``. ``root`` may also be the ``raw``
  folder itself or its parent.
- CIFAR-10: ``root/cifar-10-batches-py/{data_batch_1..5,test_batch}`` (Python pickles), or
  ``root`` being that folder.
Images are kept as uint8 [N, C, H, W]; Paper B feeds raw [0, 1] pixels (mean 0, std 1).
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import torch

from labconsole.config.data import DataConfig
from labconsole.engine.data.groups import DatasetBundle, GroupInfo, SplitData
from labconsole.errors import DataError

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_IDX_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (unsigned bytes only, as MNIST ships them), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if len(data) < 4:
        raise DataError(f"{path}: too short to be an IDX file")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    expected = int(np.prod(dims))
    if body.size != expected:
        raise DataError(f"{path}: header says {dims} ({expected} bytes) but the file has {body.size}")
    return body.reshape(dims)


def _find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _idx_raw_folder(name: str, root: Path) -> Path:
    sub = _IDX_FOLDERS[name]
    for folder in (root / sub / "raw", root / "raw", root):
        if _find_file(folder, _IDX_FILES["train"][0]) is not None:
            return folder
    raise DataError(
        f"{name}: no {_IDX_FILES['train'][0]}[.gz] found under {root} "
        f"(expected {root / sub / 'raw'}/train-images-idx3-ubyte and the other three IDX files)"
    )


def _load_idx_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_stem, labels_stem = _IDX_FILES[split]
    paths = [_find_file(folder, images_stem), _find_file(folder, labels_stem)]
    for stem, path in zip((images_stem, labels_stem), paths):
        if path is None:
            raise DataError(f"missing file {folder / stem}[.gz]")
    images, labels = read_idx(paths[0]), read_idx(paths[1])  # type: ignore[arg-type]
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match")
    return images[:, None, :, :], labels


def _cifar_folder(root: Path) -> Path:
    for folder in (root / "cifar-10-batches-py", root):
        if (folder / "data_batch_1").is_file():
            return folder
    raise DataError(f"cifar10: no cifar-10-batches-py/data_batch_1 under {root} (torchvision's python layout)")


def _load_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"missing file {path}")
    try:
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
    except Exception as exc:  # a corrupt pickle can raise almost anything
        raise DataError(f"{path}: not a CIFAR-10 python batch ({exc})") from None
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise DataError(f"{path}: has no 'data'/'labels' entries")
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: expected data of shape [N, 3072], got {data.shape}")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def load_torchvision_folder(name: str, root: Path, cfg: DataConfig) -> DatasetBundle:
    root = Path(root)
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if name in _IDX_FOLDERS:
        folder = _idx_raw_folder(name, root)
        for split in ("train", "test"):
            arrays[split] = _load_idx_split(folder, split)
        class_names = tuple(str(d) for d in range(10)) if name == "mnist" else FASHION_CLASSES
        layout = f"torchvision-idx:{folder}"
    elif name == "cifar10":
        folder = _cifar_folder(root)
        parts = [_load_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
        arrays["train"] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        arrays["test"] = _load_cifar_batch(folder / "test_batch")
        class_names = CIFAR10_CLASSES
        layout = f"torchvision-cifar:{folder}"
    else:
        raise DataError(f"unknown torchvision dataset {name!r} (known: mnist, fashion-mnist, cifar10)")
    groups = GroupInfo(class_names=class_names, attr_names=("clean",))
    cap = int(getattr(cfg, "max_per_split", 0) or 0)
    splits: dict[str, SplitData] = {}
    for split, (images, labels) in arrays.items():
        if cap:
            images, labels = images[:cap], labels[:cap]
        y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(class_names)):
            raise DataError(f"{name} {split}: labels outside 0..{len(class_names) - 1}")
        a = torch.zeros_like(y)
        splits[split] = SplitData(
            name=split,
            y=y,
            a=a,
            g=groups.group_of(y, a),
            images=torch.from_numpy(np.array(images, dtype=np.uint8, copy=True)),
        )
    channels, size = int(arrays["train"][0].shape[1]), int(arrays["train"][0].shape[2])
    return DatasetBundle(
        name=name,
        groups=groups,
        splits=splits,
        image_size=size,
        channels=channels,
        mean=(0.0,) * channels,
        std=(1.0,) * channels,
        layout=layout,
        root=str(root),
        check={"ok": True, "counts": {k: len(v) for k, v in splits.items()}},
    )
