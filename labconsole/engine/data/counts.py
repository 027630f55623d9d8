"""Group counts per split against the published ones (SPEC §1).

The loaders (``waterbirds``, ``celeba``) attach ``counts_check`` to every bundle they build; the
full dataset check (``check``) builds on the loaders. Keeping the counts here, below both, is
what lets ``check`` import the loaders without the loaders importing ``check``.
"""

from __future__ import annotations

from typing import Any

from labconsole.engine.data.files import SPLIT_NAMES, MetadataTable
from labconsole.engine.data.groups import CELEBA_GROUPS, KNOWN_COUNTS, WATERBIRDS_GROUPS, DatasetBundle, GroupInfo

GROUPS_BY_DATASET: dict[str, GroupInfo] = {"waterbirds": WATERBIRDS_GROUPS, "celeba": CELEBA_GROUPS}


def table_group_counts(table: MetadataTable, groups: GroupInfo) -> dict[str, list[int]]:
    """Group counts per split over every row of the metadata (before any cap)."""
    counts = {name: [0] * groups.num_groups for name in SPLIT_NAMES}
    n_attrs = len(groups.attr_names)
    for y, a, split in zip(table.y, table.a, table.split):
        counts[SPLIT_NAMES[split]][y * n_attrs + a] += 1
    return counts


def compare_counts(dataset: str, found: dict[str, list[int]]) -> dict[str, Any]:
    """Per split and group: found, expected, difference; ``matches_known`` when all equal."""
    groups = GROUPS_BY_DATASET[dataset]
    known = KNOWN_COUNTS[dataset]
    splits: dict[str, Any] = {}
    matches = True
    for split in SPLIT_NAMES:
        rows = []
        for index, name in enumerate(groups.group_names):
            got, expected = found[split][index], known[split][index]
            matches &= got == expected
            rows.append(
                {"group": name, "index": index, "found": got, "expected": expected, "difference": got - expected}
            )
        splits[split] = {"groups": rows, "found": sum(found[split]), "expected": sum(known[split])}
    return {"splits": splits, "matches_known": matches}


def counts_check(bundle: DatasetBundle, table: MetadataTable, max_per_split: int = 0) -> dict[str, Any]:
    """The cheap check attached to every loaded bundle: counts on disk vs the known ones,
    plus the counts actually used when ``max_per_split`` caps the splits."""
    comparison = compare_counts(table.dataset, table_group_counts(table, bundle.groups))
    used = {name: split.group_counts(bundle.groups.num_groups) for name, split in bundle.splits.items()}
    return {
        "dataset": table.dataset,
        "layout": table.layout,
        "metadata": [str(p) for p in table.metadata_files],
        "image_dir": str(table.image_dir),
        "matches_known": comparison["matches_known"],
        "splits": comparison["splits"],
        "max_per_split": max_per_split,
        "used_counts": used,
        "verdict": "matches the published counts"
        if comparison["matches_known"]
        else "counts differ from the published ones",
    }
