"""Waterbirds / CelebA loaders, transforms and the dataset check, on tiny real-format copies."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from conftest_data import (
    ROWS,
    SPLIT_SIZES,
    make_celeba_kaggle,
    make_celeba_metadata_csv,
    make_celeba_official,
    make_waterbirds_original,
    make_waterbirds_subpopbench,
    make_waterbirds_wilds,
)
from PIL import Image

from labconsole.engine.data.celeba import load_celeba
from labconsole.engine.data.check import check_dataset
from labconsole.engine.data.files import ImageFileDataset, stratified_cap, training_dataset
from labconsole.engine.data.groups import CELEBA_GROUPS, KNOWN_COUNTS, WATERBIRDS_GROUPS
from labconsole.engine.data.transforms import (
    decode_eval_images,
    eval_resize_size,
    finetune_view_transform,
    train_transform,
)
from labconsole.engine.data.waterbirds import load_waterbirds
from labconsole.errors import DataError


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABCONSOLE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def expected_groups(split: int) -> list[int]:
    return [2 * y + a for y, a, s in ROWS if s == split]


WATERBIRDS_LAYOUTS = [
    (make_waterbirds_original, "original"),
    (make_waterbirds_wilds, "wilds"),
    (make_waterbirds_subpopbench, "subpopbench"),
]
CELEBA_LAYOUTS = [
    (make_celeba_official, "official"),
    (make_celeba_kaggle, "kaggle"),
    (make_celeba_metadata_csv, "metadata-csv"),
]


@pytest.mark.parametrize("make, layout", WATERBIRDS_LAYOUTS)
def test_waterbirds_layouts_load(tmp_path: Path, make, layout: str) -> None:
    bundle = load_waterbirds(make(tmp_path), image_size=16)
    assert bundle.layout == layout
    assert bundle.groups == WATERBIRDS_GROUPS
    assert bundle.groups.group_names == ("landbird-land", "landbird-water", "waterbird-land", "waterbird-water")
    assert {name: len(split) for name, split in bundle.splits.items()} == SPLIT_SIZES
    for split_index, name in enumerate(("train", "val", "test")):
        split = bundle.split(name)
        assert split.g.tolist() == expected_groups(split_index)
        assert torch.equal(split.g, 2 * split.y + split.a)
        assert split.images is None and all(p.is_file() for p in split.paths)
    assert bundle.check["layout"] == layout
    assert bundle.check["matches_known"] is False  # 14 images are not the real 11,788


@pytest.mark.parametrize("make, layout", CELEBA_LAYOUTS)
def test_celeba_layouts_load(tmp_path: Path, make, layout: str) -> None:
    bundle = load_celeba(make(tmp_path), image_size=16)
    assert bundle.layout == layout
    assert bundle.groups == CELEBA_GROUPS
    assert bundle.groups.group_names == ("nonblond-female", "nonblond-male", "blond-female", "blond-male")
    assert {name: len(split) for name, split in bundle.splits.items()} == SPLIT_SIZES
    for split_index, name in enumerate(("train", "val", "test")):
        assert bundle.split(name).g.tolist() == expected_groups(split_index)
    images = decode_eval_images(bundle.split("val").paths, 16)
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 16, 16)


def test_eval_decode_shape_and_standard_geometry(tmp_path: Path) -> None:
    bundle = load_waterbirds(make_waterbirds_original(tmp_path), image_size=24)
    paths = bundle.split("train").paths
    images = decode_eval_images(paths, 24, num_workers=2)
    assert images.dtype == torch.uint8 and images.shape == (6, 3, 24, 24)
    assert eval_resize_size(224) == 256
    # Grayscale decoding gives one channel; serial and threaded decoding agree exactly.
    assert decode_eval_images(paths, 24, channels=1).shape == (6, 1, 24, 24)
    assert torch.equal(decode_eval_images(paths, 24, num_workers=1), images)


def test_disk_cache_returns_the_same_tensor_and_notices_edits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LABCONSOLE_CACHE_DIR", str(cache))
    bundle = load_waterbirds(make_waterbirds_original(tmp_path / "data"), image_size=16)
    paths = bundle.split("train").paths
    first = decode_eval_images(paths, 16, use_disk_cache=True)
    written = list((cache / "decoded").glob("*.pt"))
    assert len(written) == 1
    assert torch.equal(decode_eval_images(paths, 16, use_disk_cache=True), first)
    # Overwrite one image with different content: the cache key changes, the new pixels show.
    Image.new("RGB", (50, 50), (255, 0, 0)).save(paths[0], format="JPEG")
    fresh = decode_eval_images(paths, 16, use_disk_cache=True)
    assert not torch.equal(fresh[0], first[0]) and torch.equal(fresh[1:], first[1:])


def test_train_and_finetune_transforms_are_random_and_shape_correct(tmp_path: Path) -> None:
    bundle = load_waterbirds(make_waterbirds_original(tmp_path), image_size=20)
    image = Image.open(bundle.split("train").paths[0]).convert("RGB")
    for make in (train_transform, finetune_view_transform):
        transform = make(20)
        torch.manual_seed(0)
        views = [transform(image) for _ in range(6)]
        assert all(v.dtype == torch.uint8 and v.shape == (3, 20, 20) for v in views)
        assert any(not torch.equal(views[0], v) for v in views[1:])
    dataset = ImageFileDataset(bundle.split("train"), train_transform(20))
    x, y, g = dataset[3]
    assert x.shape == (3, 20, 20) and x.dtype == torch.uint8
    assert int(g) == 2 * int(y) + bundle.split("train").a[3].item()
    # Without augmentation a training item is exactly the eval decode of that file.
    plain = training_dataset(bundle.split("train"), 20, augment=False)
    assert torch.equal(plain[3][0], decode_eval_images(bundle.split("train").paths[3:4], 20)[0])


def test_max_per_split_caps_deterministically_and_keeps_groups(tmp_path: Path) -> None:
    root = make_waterbirds_original(tmp_path)
    first = load_waterbirds(root, image_size=16, max_per_split=4)
    second = load_waterbirds(root, image_size=16, max_per_split=4)
    assert len(first.split("train")) == 4
    assert sorted(set(first.split("train").g.tolist())) == [0, 1, 2, 3]
    assert first.split("train").paths == second.split("train").paths
    assert first.check["used_counts"]["train"] == [1, 1, 1, 1]
    assert sum(row["found"] for row in first.check["splits"]["train"]["groups"]) == 6  # on-disk counts


def test_stratified_cap_keeps_group_proportions() -> None:
    g = torch.tensor([0] * 80 + [1] * 10 + [2] * 6 + [3] * 4)
    kept = stratified_cap(g, 50, 4)
    assert len(kept) == 50
    assert torch.bincount(g[kept], minlength=4).tolist() == [40, 5, 3, 2]


def _rewrite_csv_without(csv_path: Path, column: str) -> None:
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    header = [name for name in rows[0] if name != column]
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def test_missing_column_is_named(tmp_path: Path) -> None:
    root = make_waterbirds_original(tmp_path)
    csv_path = root / "waterbird_complete95_forest2water2" / "metadata.csv"
    _rewrite_csv_without(csv_path, "place")
    with pytest.raises(DataError, match=r"metadata\.csv: missing column `place` \(expected img_id,img_filename"):
        load_waterbirds(root)


def test_missing_celeba_attribute_and_partition_are_named(tmp_path: Path) -> None:
    root = make_celeba_kaggle(tmp_path)
    _rewrite_csv_without(root / "list_attr_celeba.csv", "Blond_Hair")
    with pytest.raises(DataError, match=r"list_attr_celeba.csv: missing column `Blond_Hair`"):
        load_celeba(root)
    root = make_celeba_official(tmp_path / "official")
    (root / "celeba" / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match=r"list_eval_partition.txt"):
        load_celeba(root)


def test_missing_image_file_is_named(tmp_path: Path) -> None:
    root = make_waterbirds_original(tmp_path)
    bundle = load_waterbirds(root)
    victim = bundle.split("test").paths[2]
    victim.unlink()
    with pytest.raises(DataError, match=f"missing: {victim}"):
        load_waterbirds(root)


def test_missing_metadata_names_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"waterbird_complete95_forest2water2/metadata.csv"):
        load_waterbirds(tmp_path)


def test_bad_label_value_names_line_and_column(tmp_path: Path) -> None:
    root = make_waterbirds_original(tmp_path)
    csv_path = root / "waterbird_complete95_forest2water2" / "metadata.csv"
    lines = csv_path.read_text().splitlines()
    fields = lines[3].split(",")
    fields[3] = "7"  # split
    lines[3] = ",".join(fields)
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 4, column `split`"):
        load_waterbirds(root)


def test_corrupt_image_is_named_by_decode_and_check(tmp_path: Path) -> None:
    root = make_waterbirds_original(tmp_path)
    bundle = load_waterbirds(root, image_size=16)
    paths = bundle.split("val").paths
    paths[1].write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(DataError, match=f"unreadable image: {paths[1]}"):
        decode_eval_images(paths, 16, num_workers=2)
    report = check_dataset(root, full=True)
    assert report["ok"] is False
    assert [item["path"] for item in report["unreadable"]] == [str(paths[1])]
    assert any(str(paths[1]) in problem for problem in report["problems"])


def test_check_dataset_reports_counts_against_known(tmp_path: Path) -> None:
    report = check_dataset(make_celeba_official(tmp_path), None)
    assert report["dataset"] == "celeba" and report["layout"] == "official"
    assert report["ok"] is True and report["matches_known"] is False
    test_rows = report["splits"]["test"]["groups"]
    assert [row["found"] for row in test_rows] == [1, 1, 1, 1]
    assert [row["expected"] for row in test_rows] == list(KNOWN_COUNTS["celeba"]["test"])
    assert all(row["difference"] == row["found"] - row["expected"] for row in test_rows)
    assert report["images_opened"] == len(ROWS)


def test_check_dataset_names_missing_files_and_unknown_folders(tmp_path: Path) -> None:
    root = make_waterbirds_subpopbench(tmp_path / "a")
    victim = load_waterbirds(root).split("train").paths[0]
    victim.unlink()
    report = check_dataset(root, "waterbirds")
    assert report["ok"] is False and report["missing_files"] == [str(victim)]
    empty = tmp_path / "empty"
    empty.mkdir()
    report = check_dataset(empty)
    assert report["ok"] is False and report["dataset"] is None
    assert "no Waterbirds or CelebA metadata" in report["problems"][0]
