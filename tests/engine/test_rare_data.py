"""Digits (embedded) and torchvision-format folders for Paper B's lab."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from labconsole.config.data import DataConfig
from labconsole.engine.data.digits import load_digits_dataset
from labconsole.engine.data.registry import load_dataset
from labconsole.engine.data.torchvision_folders import load_torchvision_folder
from labconsole.errors import DataError


def test_digits_is_mnist_like_and_deterministic() -> None:
    bundle = load_digits_dataset(DataConfig(dataset="digits"))
    train, test = bundle.split("train"), bundle.split("test")
    assert bundle.image_size == 28 and bundle.channels == 1
    assert train.images.dtype == torch.uint8 and tuple(train.images.shape[1:]) == (1, 28, 28)
    assert bundle.mean == (0.0,) and bundle.std == (1.0,)
    assert bundle.groups.class_names == tuple(str(d) for d in range(10))
    assert sum(len(s) for s in bundle.splits.values()) == 1797
    assert int(train.images[:, :, :4, :].max()) == 0  # blank border where S1–S3 go
    again = load_digits_dataset(DataConfig(dataset="digits"))
    assert torch.equal(again.split("train").images, train.images)
    assert torch.equal(train.g, train.y)  # single attribute: group = class
    assert len(test) > 300


def test_digits_color_variant() -> None:
    bundle = load_dataset(DataConfig(dataset="digits-color"))
    assert bundle.channels == 3 and bundle.image_size == 32
    assert tuple(bundle.split("train").images.shape[1:]) == (3, 32, 32)


def _write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("name, folder, gz", [("mnist", "MNIST", False), ("fashion-mnist", "FashionMNIST", True)])
def test_idx_folders(tmp_path: Path, name: str, folder: str, gz: bool) -> None:
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train_x, train_y = rng.integers(0, 256, (6, 28, 28)), np.array([0, 1, 2, 3, 4, 9])
    test_x, test_y = rng.integers(0, 256, (3, 28, 28)), np.array([5, 6, 7])
    _write_idx(raw / "train-images-idx3-ubyte", train_x, gz)
    _write_idx(raw / "train-labels-idx1-ubyte", train_y, gz)
    _write_idx(raw / "t10k-images-idx3-ubyte", test_x, gz)
    _write_idx(raw / "t10k-labels-idx1-ubyte", test_y, gz)
    bundle = load_torchvision_folder(name, tmp_path, DataConfig(dataset=name))
    assert torch.equal(bundle.split("train").images[:, 0], torch.as_tensor(train_x, dtype=torch.uint8))
    assert bundle.split("test").y.tolist() == [5, 6, 7]
    assert bundle.channels == 1 and bundle.image_size == 28


def test_cifar_folder(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(1, 6):
        batch = {b"data": rng.integers(0, 256, (2, 3072)).astype(np.uint8), b"labels": [i, i + 1]}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    test = {b"data": rng.integers(0, 256, (4, 3072)).astype(np.uint8), b"labels": [0, 1, 2, 3]}
    (folder / "test_batch").write_bytes(pickle.dumps(test))
    bundle = load_torchvision_folder("cifar10", tmp_path, DataConfig(dataset="cifar10"))
    assert len(bundle.split("train")) == 10 and bundle.split("train").y.tolist()[:2] == [1, 2]
    assert torch.equal(bundle.split("test").images[0].flatten(), torch.as_tensor(test[b"data"][0]))
    assert bundle.channels == 3 and bundle.groups.class_names[0] == "airplane"


def test_missing_files_name_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_torchvision_folder("mnist", tmp_path, DataConfig(dataset="mnist"))
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load_torchvision_folder("cifar10", tmp_path, DataConfig(dataset="cifar10"))
    bad = tmp_path / "MNIST" / "raw"
    bad.mkdir(parents=True)
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (bad / stem).write_bytes(b"\x00\x00\x0d\x03garbage")
    with pytest.raises(DataError, match="not an unsigned-byte IDX"):
        load_torchvision_folder("mnist", tmp_path, DataConfig(dataset="mnist"))
