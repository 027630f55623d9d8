"""CelebA (Liu et al. 2015) as in the group-robustness literature: y = Blond_Hair, a = Male,
g = 2y + a.

Accepted layouts (SPEC §1), with ``root`` the CelebA folder or its parent:
- official: ``img_align_celeba/`` + ``list_attr_celeba.txt`` (line 1 count, line 2 attribute
  names, then ``filename v1 v2 ...`` with ±1) + ``list_eval_partition.txt`` (``filename 0|1|2``);
  the annotation files may also sit in ``Anno/`` and ``Eval/``;
- Kaggle: ``list_attr_celeba.csv`` (image_id + attributes, ±1) + ``list_eval_partition.csv``
  (image_id, partition); images in ``img_align_celeba/img_align_celeba/``;
- ``metadata.csv`` with the Waterbirds columns (y = blond, place = male), or SubpopBench's
  ``metadata_celeba.csv`` (id,filename,split,y,a).
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
from labconsole.engine.data.groups import CELEBA_GROUPS, DatasetBundle
from labconsole.errors import DataError

TARGET_ATTRIBUTE = "Blond_Hair"
SPURIOUS_ATTRIBUTE = "Male"
IMAGE_FOLDER = "img_align_celeba"
METADATA_COLUMNS = ("img_id", "img_filename", "y", "split", "place", "place_filename")
SUBPOPBENCH_COLUMNS = ("id", "filename", "split", "y", "a")


def _first_file(folder: Path, *relative: str) -> Path | None:
    for name in relative:
        if (folder / name).is_file():
            return folder / name
    return None


def find_celeba_folder(root: Path) -> tuple[Path, str] | None:
    """(folder, layout) of the first CelebA layout found in ``root`` or ``root/celeba``."""
    for folder in (root, root / "celeba", root / "CelebA"):
        if _first_file(folder, "list_attr_celeba.txt", "Anno/list_attr_celeba.txt"):
            return folder, "official"
        if (folder / "list_attr_celeba.csv").is_file():
            return folder, "kaggle"
        if (folder / "metadata.csv").is_file() or (folder / "metadata_celeba.csv").is_file():
            return folder, "metadata-csv"
    return None


def _image_dir_candidates(folder: Path) -> list[Path]:
    return [
        folder / IMAGE_FOLDER / IMAGE_FOLDER,  # Kaggle nests the folder
        folder / IMAGE_FOLDER,
        folder / "Img" / IMAGE_FOLDER,
        folder,
    ]


def _plus_minus_one(value: str, where: str) -> int:
    """±1 attribute → 1/0 (some re-exports write 0 for -1: accept it)."""
    return 1 if parse_int(value, (-1, 0, 1), where) == 1 else 0


def _read_attribute_txt(path: Path) -> dict[str, tuple[int, int]]:
    """filename → (blond, male) from list_attr_celeba.txt."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None
    if len(lines) < 3:
        raise DataError(f"{path}: expected a count line, an attribute-name line, then one line per image")
    names = lines[1].split()
    for attribute in (TARGET_ATTRIBUTE, SPURIOUS_ATTRIBUTE):
        if attribute not in names:
            raise DataError(f"{path}: missing attribute `{attribute}` in the names on line 2")
    # Rows carry the filename first, so attribute k sits in field k + 1.
    target, spurious = names.index(TARGET_ATTRIBUTE) + 1, names.index(SPURIOUS_ATTRIBUTE) + 1
    labels: dict[str, tuple[int, int]] = {}
    for line_number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1:
            raise DataError(f"{path}, line {line_number}: expected a filename and {len(names)} values")
        where = f"{path}, line {line_number}"
        labels[fields[0]] = (_plus_minus_one(fields[target], where), _plus_minus_one(fields[spurious], where))
    return labels


def _read_partition_txt(path: Path) -> dict[str, int]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None
    partition: dict[str, int] = {}
    for line_number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DataError(f"{path}, line {line_number}: expected `filename 0|1|2`")
        partition[fields[0]] = parse_int(fields[1], (0, 1, 2), f"{path}, line {line_number}")
    return partition


def _read_attribute_csv(path: Path) -> dict[str, tuple[int, int]]:
    expected = ("image_id", TARGET_ATTRIBUTE, SPURIOUS_ATTRIBUTE, "...")
    rows = read_csv_rows(path, ("image_id", TARGET_ATTRIBUTE, SPURIOUS_ATTRIBUTE), expected)
    labels = {}
    for line, row in enumerate(rows, start=2):
        where = f"{path}, line {line}"
        labels[row["image_id"].strip()] = (
            _plus_minus_one(row[TARGET_ATTRIBUTE], f"{where}, column `{TARGET_ATTRIBUTE}`"),
            _plus_minus_one(row[SPURIOUS_ATTRIBUTE], f"{where}, column `{SPURIOUS_ATTRIBUTE}`"),
        )
    return labels


def _read_partition_csv(path: Path) -> dict[str, int]:
    rows = read_csv_rows(path, ("image_id", "partition"), ("image_id", "partition"))
    return {
        row["image_id"].strip(): parse_int(row["partition"], (0, 1, 2), f"{path}, line {line}, column `partition`")
        for line, row in enumerate(rows, start=2)
    }


def _join_labels_and_partition(
    labels: dict[str, tuple[int, int]], partition: dict[str, int], attr_file: Path, partition_file: Path
) -> tuple[list[str], list[int], list[int], list[int]]:
    filenames, y, a, split = [], [], [], []
    for filename, split_index in partition.items():
        if filename not in labels:
            raise DataError(f"{filename} is listed in {partition_file} but has no attributes in {attr_file}")
        blond, male = labels[filename]
        filenames.append(filename)
        y.append(blond)
        a.append(male)
        split.append(split_index)
    if not filenames:
        raise DataError(f"{partition_file}: no images listed")
    return filenames, y, a, split


def _read_metadata_csv(folder: Path) -> tuple[Path, list[str], list[int], list[int], list[int]]:
    csv_path = folder / "metadata.csv"
    if not csv_path.is_file():
        csv_path = folder / "metadata_celeba.csv"
    with open(csv_path, encoding="utf-8-sig") as handle:
        header = {name.strip() for name in handle.readline().split(",")}
    if "filename" in header and "img_filename" not in header:
        rows = read_csv_rows(csv_path, ("filename", "split", "y", "a"), SUBPOPBENCH_COLUMNS)
        file_column, attr_column = "filename", "a"
    else:
        rows = read_csv_rows(csv_path, ("img_filename", "y", "split", "place"), METADATA_COLUMNS)
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
    return csv_path, filenames, y, a, split


def read_celeba_table(root: Path | str) -> MetadataTable:
    """Parse the annotations of any accepted layout (no image is opened, no file checked)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"CelebA folder not found: {root}")
    found = find_celeba_folder(root)
    if found is None:
        raise DataError(
            f"no CelebA annotations under {root}: expected list_attr_celeba.txt + list_eval_partition.txt, "
            "list_attr_celeba.csv + list_eval_partition.csv, or metadata.csv"
        )
    folder, layout = found
    if layout == "metadata-csv":
        csv_path, filenames, y, a, split = _read_metadata_csv(folder)
        metadata_files = [csv_path]
        candidates = [folder, *_image_dir_candidates(folder)]
    else:
        if layout == "official":
            attr_file = _first_file(folder, "list_attr_celeba.txt", "Anno/list_attr_celeba.txt")
            partition_file = _first_file(folder, "list_eval_partition.txt", "Eval/list_eval_partition.txt")
            expected_partition = folder / "list_eval_partition.txt"
        else:
            attr_file = folder / "list_attr_celeba.csv"
            partition_file = _first_file(folder, "list_eval_partition.csv")
            expected_partition = folder / "list_eval_partition.csv"
        assert attr_file is not None
        if partition_file is None:
            raise DataError(f"missing file {expected_partition} (the train/val/test partition of CelebA)")
        if layout == "official":
            labels, partition = _read_attribute_txt(attr_file), _read_partition_txt(partition_file)
        else:
            labels, partition = _read_attribute_csv(attr_file), _read_partition_csv(partition_file)
        filenames, y, a, split = _join_labels_and_partition(labels, partition, attr_file, partition_file)
        metadata_files = [attr_file, partition_file]
        candidates = _image_dir_candidates(folder)
    image_dir = resolve_image_dir(candidates, filenames, metadata_files[0])
    return MetadataTable(
        dataset="celeba",
        layout=layout,
        metadata_files=metadata_files,
        image_dir=image_dir,
        filenames=filenames,
        y=y,
        a=a,
        split=split,
    )


def load_celeba(root: Path, image_size: int = 224, max_per_split: int = 0) -> DatasetBundle:
    """CelebA as file paths per split, with the cheap dataset check attached.

    Raises DataError naming the missing annotation file, attribute/column or image file."""
    table = read_celeba_table(root)
    raise_if_missing(table.path_strings(), table.metadata_files[0])
    bundle = build_bundle(table, CELEBA_GROUPS, image_size, max_per_split)
    bundle.check = counts_check(bundle, table, max_per_split=max_per_split)
    return bundle
