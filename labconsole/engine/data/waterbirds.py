"""Waterbirds (Sagawa et al. 2020): y = 1 for waterbirds, a = place (1 = water), g = 2y + a.

Accepted layouts (SPEC §1), with ``root`` the folder holding the CSV or any parent of it:
- ``waterbird_complete95_forest2water2/metadata.csv``: img_id,img_filename,y,split,place,place_filename
- WILDS ``waterbirds_v1.0/metadata.csv`` (same columns)
- SubpopBench ``metadata_waterbirds.csv``: id,filename,split,y,a (file names relative to the
  image folder, usually ``waterbird_complete95_forest2water2/`` beside the CSV)
"""

from __future__ import annotations

from pathlib import Path

from labconsole.engine.data.counts import counts_check
from labconsole.engine.data.files import (
    MetadataTable,
    build_bundle,
    parse_int,
    raise_if_missing,
    read_csv_rows,
    resolve_image_dir,
)
from labconsole.engine.data.groups import WATERBIRDS_GROUPS, DatasetBundle
from labconsole.errors import DataError

ORIGINAL_FOLDER = "waterbird_complete95_forest2water2"
WILDS_FOLDER = "waterbirds_v1.0"
SUBPOPBENCH_CSV = "metadata_waterbirds.csv"
ORIGINAL_COLUMNS = ("img_id", "img_filename", "y", "split", "place", "place_filename")
ORIGINAL_REQUIRED = ("img_filename", "y", "split", "place")
SUBPOPBENCH_COLUMNS = ("id", "filename", "split", "y", "a")
SUBPOPBENCH_REQUIRED = ("filename", "split", "y", "a")


def find_waterbirds_metadata(root: Path) -> Path | None:
    """The metadata CSV under ``root`` (the folder itself, a layout folder, or one level up)."""
    bases = [root, root / "waterbirds"]
    for base in bases:
        for candidate in (
            base / "metadata.csv",
            base / ORIGINAL_FOLDER / "metadata.csv",
            base / WILDS_FOLDER / "metadata.csv",
            base / SUBPOPBENCH_CSV,
        ):
            if candidate.is_file():
                return candidate
    return None


def _layout_name(csv_path: Path, subpopbench: bool) -> str:
    if subpopbench:
        return "subpopbench"
    if csv_path.parent.name == WILDS_FOLDER:
        return "wilds"
    return "original"


def read_waterbirds_table(root: Path | str) -> MetadataTable:
    """Parse the metadata of any accepted layout (no image is opened, no file checked)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"Waterbirds folder not found: {root}")
    csv_path = find_waterbirds_metadata(root)
    if csv_path is None:
        raise DataError(
            f"no Waterbirds metadata under {root}: expected {ORIGINAL_FOLDER}/metadata.csv, "
            f"{WILDS_FOLDER}/metadata.csv or {SUBPOPBENCH_CSV} (columns {','.join(ORIGINAL_COLUMNS)} "
            f"or {','.join(SUBPOPBENCH_COLUMNS)})"
        )
    with open(csv_path, encoding="utf-8-sig") as handle:
        header = {name.strip() for name in handle.readline().split(",")}
    subpopbench = "filename" in header and "img_filename" not in header
    if subpopbench:
        rows = read_csv_rows(csv_path, SUBPOPBENCH_REQUIRED, SUBPOPBENCH_COLUMNS)
        file_column, attr_column = "filename", "a"
    else:
        rows = read_csv_rows(csv_path, ORIGINAL_REQUIRED, ORIGINAL_COLUMNS)
        file_column, attr_column = "img_filename", "place"
    if not rows:
        raise DataError(f"{csv_path}: no rows")

    filenames, y, a, split = [], [], [], []
    for line, row in enumerate(rows, start=2):
        where = f"{csv_path}, line {line}"
        filenames.append(row[file_column].strip())
        y.append(parse_int(row["y"], (0, 1), f"{where}, column `y`"))
        a.append(parse_int(row[attr_column], (0, 1), f"{where}, column `{attr_column}`"))
        split.append(parse_int(row["split"], (0, 1, 2), f"{where}, column `split`"))

    folder = csv_path.parent
    candidates = [folder, folder / ORIGINAL_FOLDER, folder / WILDS_FOLDER] if subpopbench else [folder]
    image_dir = resolve_image_dir(candidates, filenames, csv_path)
    return MetadataTable(
        dataset="waterbirds",
        layout=_layout_name(csv_path, subpopbench),
        metadata_files=[csv_path],
        image_dir=image_dir,
        filenames=filenames,
        y=y,
        a=a,
        split=split,
    )


def load_waterbirds(root: Path, image_size: int = 224, max_per_split: int = 0) -> DatasetBundle:
    """Waterbirds as file paths per split, with the cheap dataset check attached.

    Raises DataError naming the missing metadata file, column or image file."""
    table = read_waterbirds_table(root)
    raise_if_missing(table.path_strings(), table.metadata_files[0])
    bundle = build_bundle(table, WATERBIRDS_GROUPS, image_size, max_per_split)
    bundle.check = counts_check(bundle, table, max_per_split=max_per_split)
    return bundle
