"""File-backed datasets: the parsed metadata table shared by the Waterbirds and CelebA
loaders, the per-split cap, the missing-file check, and a torch Dataset for training.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from labconsole.config.vocab import SPLITS
from labconsole.engine.data.groups import DatasetBundle, GroupInfo, SplitData
from labconsole.errors import DataError

SPLIT_NAMES = SPLITS  # the order of split indices in metadata tables and bundles
# Most label cells are one of these: a dict lookup is much cheaper than float() on 400k cells.
_SMALL_INTS = {"0": 0, "1": 1, "2": 2, "-1": -1}


@dataclass
class MetadataTable:
    """What a loader read from the metadata files: one row per image, before any image is opened."""

    dataset: str
    layout: str
    metadata_files: list[Path]
    image_dir: Path
    filenames: list[str]  # relative to image_dir
    y: list[int]
    a: list[int]
    split: list[int]  # 0/1/2 = train/val/test

    def paths(self) -> list[Path]:
        """Full image paths, built once (CelebA has 202,599 of them)."""
        cached = self.__dict__.get("_paths")
        if cached is None or len(cached) != len(self.filenames):
            cached = [self.image_dir / name for name in self.filenames]
            self.__dict__["_paths"] = cached
        return cached

    def path_strings(self) -> list[str]:
        """Image paths as plain strings: much cheaper than Path objects for bulk checks."""
        base = str(self.image_dir)
        return [os.path.join(base, name) for name in self.filenames]


def read_csv_rows(path: Path, required: Sequence[str], expected: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a CSV as dicts; DataError naming the file and the first missing column."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in (reader.fieldnames or [])]
            reader.fieldnames = header
            for column in required:
                if column not in header:
                    raise DataError(f"{path}: missing column `{column}` (expected {','.join(expected)})")
            return list(reader)
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None


def parse_int(value: str | None, allowed: Sequence[int], where: str) -> int:
    """An integer cell that must be one of ``allowed``; DataError says where and what."""
    number = _SMALL_INTS.get(value)  # type: ignore[arg-type]
    if number is not None and number in allowed:
        return number
    try:
        number = int(float(str(value).strip()))
    except ValueError:
        number = None
    if number is None or number not in allowed:
        raise DataError(f"{where}: value {value!r} is not one of {', '.join(map(str, allowed))}")
    return number


def resolve_image_dir(candidates: Sequence[Path], filenames: Sequence[str], metadata: Path) -> Path:
    """The first candidate folder in which the listed image files are found.

    Checks a few filenames spread over the list; if no folder has them all, the folder with the
    most hits wins, so the missing-file check can then name exactly which files are absent."""
    if not filenames:
        return candidates[0]
    step = max(1, len(filenames) // 5)
    probe = list(filenames[::step])[:5]
    best, best_hits = candidates[0], -1
    for folder in candidates:
        hits = sum((folder / name).is_file() for name in probe)
        if hits == len(probe):
            return folder
        if hits > best_hits:
            best, best_hits = folder, hits
    if best_hits == 0:
        tried = ", ".join(str(c) for c in candidates)
        raise DataError(f"images listed in {metadata} not found (first: {filenames[0]}); looked in {tried}")
    return best


def find_missing_files(paths: Sequence[Path | str]) -> list[Path]:
    """Listed files that do not exist. Lists each folder once instead of one stat per file
    (CelebA has 202,599 images in a single folder)."""
    by_folder: dict[str, list[int]] = defaultdict(list)
    for index, path in enumerate(paths):
        by_folder[os.path.dirname(path)].append(index)
    missing: list[int] = []
    for folder, members in by_folder.items():
        try:
            present = set(os.listdir(folder))
        except OSError:
            present = set()
        missing.extend(i for i in members if os.path.basename(paths[i]) not in present)
    return [Path(paths[i]) for i in sorted(missing)]


def raise_if_missing(paths: Sequence[Path | str], metadata: Path) -> None:
    missing = find_missing_files(paths)
    if missing:
        listed = ", ".join(str(p) for p in missing[:3])
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise DataError(f"{len(missing)} image file(s) listed in {metadata} are missing: {listed}{more}")


def stratified_cap(g: torch.Tensor, cap: int, num_groups: int, seed: int = 0) -> torch.Tensor:
    """Indices of at most ``cap`` rows keeping each group's share (largest remainder), with at
    least one row of every present group when the cap allows. Deterministic; original order kept."""
    n = len(g)
    if cap <= 0 or n <= cap:
        return torch.arange(n)
    counts = torch.bincount(g, minlength=num_groups).tolist()
    present = [k for k in range(num_groups) if counts[k] > 0]
    exact = [counts[k] * cap / n for k in range(num_groups)]
    quota = [int(e) for e in exact]
    if cap >= len(present):
        for k in present:
            quota[k] = max(quota[k], 1)
    order = sorted(range(num_groups), key=lambda k: exact[k] - int(exact[k]), reverse=True)
    while sum(quota) < cap:
        for k in order:
            if sum(quota) < cap and quota[k] < counts[k]:
                quota[k] += 1
    while sum(quota) > cap:  # the "at least one" rule overshot: trim the largest groups
        largest = max(range(num_groups), key=lambda k: quota[k])
        quota[largest] -= 1
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for k in range(num_groups):
        members = torch.nonzero(g == k).flatten()
        shuffled = members[torch.randperm(len(members), generator=generator)]
        chosen.append(shuffled[: quota[k]])
    return torch.sort(torch.cat(chosen)).values


def build_bundle(
    table: MetadataTable,
    groups: GroupInfo,
    image_size: int,
    max_per_split: int = 0,
    check: dict[str, Any] | None = None,
) -> DatasetBundle:
    """Split the table into train/val/test SplitData (paths, not images)."""
    all_paths = table.paths()
    y_all = torch.tensor(table.y, dtype=torch.long)
    a_all = torch.tensor(table.a, dtype=torch.long)
    split_all = torch.tensor(table.split, dtype=torch.long)
    splits: dict[str, SplitData] = {}
    for split_index, name in enumerate(SPLIT_NAMES):
        rows = torch.nonzero(split_all == split_index).flatten()
        y, a = y_all[rows], a_all[rows]
        g = groups.group_of(y, a)
        keep = stratified_cap(g, max_per_split, groups.num_groups)
        rows, y, a, g = rows[keep], y[keep], a[keep], g[keep]
        splits[name] = SplitData(name=name, y=y, a=a, g=g, paths=[all_paths[i] for i in rows.tolist()])
    return DatasetBundle(
        name=table.dataset,
        groups=groups,
        splits=splits,
        image_size=image_size,
        channels=3,
        layout=table.layout,
        root=str(table.image_dir),
        check=check or {},
    )


class ImageFileDataset(Dataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """Training view of a file-backed split: (uint8 image [C, S, S], y, g) per item.

    Use with a DataLoader (``num_workers`` > 0 decodes in parallel processes); normalise on the
    device afterwards with the bundle's mean/std."""

    def __init__(self, split: SplitData, transform: Any, channels: int = 3) -> None:
        if split.paths is None:
            raise ValueError(f"split {split.name!r} holds decoded images, not files")
        self.paths = list(split.paths)
        self.y = split.y.clone()
        self.g = split.g.clone()
        self.transform = transform
        self.channels = channels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from labconsole.engine.data.transforms import open_image

        image = self.transform(open_image(self.paths[index], self.channels))
        return image, self.y[index], self.g[index]


def training_dataset(split: SplitData, image_size: int, augment: bool = True, channels: int = 3) -> ImageFileDataset:
    """A file-backed split for a training DataLoader: SPEC §1 train augmentation when
    ``augment``, the deterministic eval transform otherwise."""
    from labconsole.engine.data.transforms import eval_transform, train_transform

    transform = train_transform(image_size) if augment else eval_transform(image_size)
    return ImageFileDataset(split, transform, channels=channels)
