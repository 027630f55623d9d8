"""Tiny on-disk copies of every Waterbirds / CelebA layout the loaders accept.

Each writer builds 14 small generated images plus the metadata files in the real format and
returns the folder a user would point ``--data-root`` at."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

# (y, a, split) per image: every split holds every group; train has two extra majority rows.
ROWS: list[tuple[int, int, int]] = [
    (0, 0, 0), (0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0), (1, 1, 0),
    (0, 0, 1), (0, 1, 1), (1, 0, 1), (1, 1, 1),
    (0, 0, 2), (0, 1, 2), (1, 0, 2), (1, 1, 2),
]  # fmt: skip
SPLIT_SIZES = {"train": 6, "val": 4, "test": 4}
CELEBA_ATTRIBUTES = ["5_o_Clock_Shadow", "Blond_Hair", "Eyeglasses", "Male", "Young"]


def write_image(path: Path, index: int, size: tuple[int, int] = (40, 30)) -> None:
    """A non-square colour gradient, distinct per index (so crops and flips change pixels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    xs = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    ys = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    pixels = np.stack([xs, ys, np.full_like(xs, (index * 37) % 256)], axis=-1).astype(np.uint8)
    Image.fromarray(pixels).save(path)


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _waterbirds_folder(folder: Path, suffix: str = ".jpg") -> list[list[object]]:
    """Images in species sub-folders + the original metadata.csv rows."""
    rows = []
    for index, (y, a, split) in enumerate(ROWS):
        name = f"{'water' if y else 'land'}_{index:03d}/Bird_{index:04d}{suffix}"
        write_image(folder / name, index)
        rows.append([index + 1, name, y, split, a, f"place/{index}.jpg"])
    return rows


WATERBIRDS_HEADER = ["img_id", "img_filename", "y", "split", "place", "place_filename"]


def make_waterbirds_original(tmp: Path) -> Path:
    folder = tmp / "waterbird_complete95_forest2water2"
    _write_csv(folder / "metadata.csv", WATERBIRDS_HEADER, _waterbirds_folder(folder))
    return tmp


def make_waterbirds_wilds(tmp: Path) -> Path:
    folder = tmp / "waterbirds_v1.0"
    _write_csv(folder / "metadata.csv", WATERBIRDS_HEADER, _waterbirds_folder(folder, ".png"))
    return folder  # the folder holding metadata.csv itself


def make_waterbirds_subpopbench(tmp: Path) -> Path:
    images = tmp / "waterbirds" / "waterbird_complete95_forest2water2"
    original = _waterbirds_folder(images)
    rows = [[row[0], row[1], row[3], row[2], row[4]] for row in original]  # id,filename,split,y,a
    _write_csv(tmp / "waterbirds" / "metadata_waterbirds.csv", ["id", "filename", "split", "y", "a"], rows)
    return tmp


def _celeba_values(y: int, a: int, index: int) -> list[int]:
    values = {"Blond_Hair": y, "Male": a, "Young": index % 2, "Eyeglasses": 0, "5_o_Clock_Shadow": 1 - a}
    return [1 if values[name] else -1 for name in CELEBA_ATTRIBUTES]


def make_celeba_official(tmp: Path) -> Path:
    folder = tmp / "celeba"
    attr_lines = [str(len(ROWS)), " ".join(CELEBA_ATTRIBUTES)]
    partition_lines = []
    for index, (y, a, split) in enumerate(ROWS):
        name = f"{index + 1:06d}.jpg"
        write_image(folder / "img_align_celeba" / name, index, size=(36, 44))
        # The real file pads with double spaces; the parser must not care.
        attr_lines.append(name + "  " + " ".join(f"{v:2d}" for v in _celeba_values(y, a, index)))
        partition_lines.append(f"{name} {split}")
    (folder / "list_attr_celeba.txt").write_text("\n".join(attr_lines) + "\n")
    (folder / "list_eval_partition.txt").write_text("\n".join(partition_lines) + "\n")
    return tmp  # the parent of the CelebA folder


def make_celeba_kaggle(tmp: Path) -> Path:
    attr_rows, partition_rows = [], []
    for index, (y, a, split) in enumerate(ROWS):
        name = f"{index + 1:06d}.jpg"
        write_image(tmp / "img_align_celeba" / "img_align_celeba" / name, index, size=(36, 44))
        attr_rows.append([name, *_celeba_values(y, a, index)])
        partition_rows.append([name, split])
    _write_csv(tmp / "list_attr_celeba.csv", ["image_id", *CELEBA_ATTRIBUTES], attr_rows)
    _write_csv(tmp / "list_eval_partition.csv", ["image_id", "partition"], partition_rows)
    return tmp


def make_celeba_metadata_csv(tmp: Path) -> Path:
    folder = tmp / "celeba"
    rows = []
    for index, (y, a, split) in enumerate(ROWS):
        name = f"img_align_celeba/{index + 1:06d}.png"
        write_image(folder / name, index, size=(36, 44))
        rows.append([index, name, y, split, a, ""])
    _write_csv(folder / "metadata.csv", WATERBIRDS_HEADER, rows)
    return folder
