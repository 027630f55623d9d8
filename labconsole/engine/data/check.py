"""The dataset check: which layout was found, group counts per split against the published
ones (SPEC §1), missing files and columns, unreadable images, and a verdict.

``counts.counts_check`` is the cheap version every loaded bundle carries (recorded in the run
manifest); ``check_dataset`` is the full one behind ``labconsole check-data``.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from labconsole.engine.data.celeba import find_celeba_folder, read_celeba_table
from labconsole.engine.data.counts import GROUPS_BY_DATASET, compare_counts, table_group_counts
from labconsole.engine.data.files import SPLIT_NAMES, MetadataTable, find_missing_files
from labconsole.engine.data.transforms import default_decode_workers, open_image
from labconsole.engine.data.waterbirds import find_waterbirds_metadata, read_waterbirds_table
from labconsole.errors import DataError, UserError

# Images opened per split when not --full: enough to catch a wrong folder or a broken copy.
SAMPLE_PER_SPLIT = 32
MAX_NAMED = 20  # problems name at most this many files, then give a count


def detect_dataset(root: Path) -> str | None:
    """'waterbirds' or 'celeba' from the files under ``root``; None when neither is found."""
    celeba = find_celeba_folder(root)
    waterbirds = find_waterbirds_metadata(root)
    if celeba and celeba[1] != "metadata-csv":
        return "celeba"
    if waterbirds and celeba:  # one metadata.csv with the shared columns: go by the folder name
        return "celeba" if "celeba" in str(celeba[0].resolve()).lower() else "waterbirds"
    if waterbirds:
        return "waterbirds"
    return "celeba" if celeba else None


CELEBA_IMAGE_NAME = re.compile(r"(^|/)\d{6}\.(jpg|png)$")


def dataset_mismatch(dataset: str, table: MetadataTable) -> str | None:
    """Why the files read as ``dataset`` look like the other dataset, or None.

    A bare ``metadata.csv`` (columns filename, y, split, place / a) is accepted by both
    loaders, so checking a Waterbirds folder as CelebA (or the reverse) would otherwise pass
    with the wrong class and attribute names. Evidence: the folder's name, the image names
    (CelebA's are six-digit numbers, Waterbirds' sit in species folders) and the group counts."""
    other = "waterbirds" if dataset == "celeba" else "celeba"
    evidence: list[str] = []
    folders = {p.name.lower() for f in table.metadata_files for p in (f.parent, f.parent.parent)}
    named = sorted(name for name in folders if other.rstrip("s") in name)
    if named:
        evidence.append(f"folder {named[0]!r}")
    sample = table.filenames[:50]
    celeba_names = sum(1 for name in sample if CELEBA_IMAGE_NAME.search(name.replace("\\", "/")))
    if sample and other == "celeba" and celeba_names == len(sample):
        evidence.append(f"image names like {sample[0]!r}")
    if sample and other == "waterbirds" and celeba_names == 0 and all("/" in name for name in sample):
        evidence.append(f"images in sub-folders like {sample[0]!r}, not CelebA's numbered files")
    if compare_counts(other, table_group_counts(table, GROUPS_BY_DATASET[other]))["matches_known"]:
        evidence.append(f"group counts equal to the published {other} ones")
    if not evidence:
        return None
    return (
        f"this folder looks like {other}, not {dataset} ({'; '.join(evidence)}); "
        f"check it with --dataset {other}, or point at the {dataset} folder"
    )


def _unreadable(paths: list[Path]) -> list[tuple[Path, str]]:
    def probe(path: Path) -> tuple[Path, str] | None:
        try:
            open_image(path)
        except DataError as error:
            return path, str(error)
        return None

    with ThreadPoolExecutor(max_workers=default_decode_workers()) as pool:
        return [result for result in pool.map(probe, paths) if result is not None]


def _sample(table: MetadataTable, full: bool) -> list[Path]:
    paths = table.paths()
    if full:
        return paths
    chosen: list[Path] = []
    for split_index in range(len(SPLIT_NAMES)):
        rows = [i for i, s in enumerate(table.split) if s == split_index]
        step = max(1, len(rows) // SAMPLE_PER_SPLIT)
        chosen.extend(paths[i] for i in rows[::step][:SAMPLE_PER_SPLIT])
    return chosen


def _named(paths: list[Path]) -> str:
    named = ", ".join(str(p) for p in paths[:MAX_NAMED])
    return named + (f" (and {len(paths) - MAX_NAMED} more)" if len(paths) > MAX_NAMED else "")


def check_dataset(root: Path | str, dataset: str | None = None, *, full: bool = False) -> dict[str, Any]:
    """Check a dataset folder without raising on data problems: they are listed in ``problems``.

    ``ok`` is True when the dataset would load and every opened image decoded; differing counts
    are reported (``matches_known``) but do not make it fail. ``full`` opens every image instead
    of a sample of each split. Raises UserError only for an unknown ``dataset`` name."""
    root = Path(root).expanduser()
    report: dict[str, Any] = {
        "root": str(root),
        "dataset": dataset,
        "layout": None,
        "metadata": [],
        "image_dir": None,
        "rows": 0,
        "splits": {},
        "matches_known": False,
        "missing_files": [],
        "missing_count": 0,
        "unreadable": [],
        "images_opened": 0,
        "full": full,
        "problems": [],
        "ok": False,
        "verdict": "",
    }
    if dataset is not None and dataset not in GROUPS_BY_DATASET:
        raise UserError(f"unknown dataset {dataset!r} for check-data (expected: {', '.join(GROUPS_BY_DATASET)})")
    if not root.exists():
        report["problems"].append(f"folder not found: {root}")
        report["verdict"] = "folder not found"
        return report
    if dataset is None:
        dataset = detect_dataset(root)
        report["dataset"] = dataset
        if dataset is None:
            report["problems"].append(
                f"no Waterbirds or CelebA metadata found under {root} (looked for metadata.csv, "
                "waterbird_complete95_forest2water2/, waterbirds_v1.0/, metadata_waterbirds.csv, "
                "list_attr_celeba.txt/.csv)"
            )
            report["verdict"] = "no dataset found"
            return report

    try:
        table = read_waterbirds_table(root) if dataset == "waterbirds" else read_celeba_table(root)
    except DataError as error:
        report["problems"].append(str(error))
        report["verdict"] = "metadata unusable"
        return report

    report.update(
        layout=table.layout,
        metadata=[str(p) for p in table.metadata_files],
        image_dir=str(table.image_dir),
        rows=len(table.filenames),
    )
    mismatch = dataset_mismatch(dataset, table)
    if mismatch:
        report["problems"].append(mismatch)
    comparison = compare_counts(dataset, table_group_counts(table, GROUPS_BY_DATASET[dataset]))
    report.update(splits=comparison["splits"], matches_known=comparison["matches_known"])
    if not comparison["matches_known"]:
        cells = [row for info in comparison["splits"].values() for row in info["groups"]]
        differing = sum(1 for row in cells if row["difference"])
        report["problems"].append(
            f"group counts differ from the published ones in {differing} of {len(cells)} split/group cells"
        )

    missing = find_missing_files(table.path_strings())
    report["missing_files"] = [str(p) for p in missing[:MAX_NAMED]]
    report["missing_count"] = len(missing)
    if missing:
        report["problems"].append(f"{len(missing)} listed image file(s) are missing: {_named(missing)}")

    missing_set = set(missing)
    to_open = [p for p in _sample(table, full) if p not in missing_set]
    unreadable = _unreadable(to_open)
    report["images_opened"] = len(to_open)
    report["unreadable"] = [{"path": str(p), "error": message} for p, message in unreadable[:MAX_NAMED]]
    if unreadable:
        report["problems"].append(f"{len(unreadable)} image(s) cannot be decoded: {_named([p for p, _ in unreadable])}")

    report["ok"] = not missing and not unreadable and not mismatch
    if mismatch:
        report["verdict"] = f"wrong dataset: {mismatch}"
    elif not report["ok"]:
        report["verdict"] = "does not load: fix the files named above"
    elif comparison["matches_known"]:
        report["verdict"] = "loads; group counts match the published ones"
    else:
        report["verdict"] = "loads; group counts differ from the published ones"
    return report
