"""``manifest.json``: what ran, where, how far it got; and ``metrics.jsonl`` epoch lines."""

from __future__ import annotations

from pydantic import Field

from labconsole.engine.records.base import Record, Splits, VersionedRecord

# -- manifest.json --------------------------------------------------------------------------------


class SessionSetup(Record):
    """What the console's Setup screen opened the session on."""

    dataset: str = ""
    data_root: str = ""
    backbone: str = ""
    checkpoint: str = ""
    device: str = "auto"


class CheckGroup(Record):
    group: str = ""
    index: int | None = None
    found: int | None = None
    expected: int | None = None
    difference: int | None = None


class CheckSplit(Record):
    groups: list[CheckGroup] = Field(default_factory=list)
    found: int | None = None
    expected: int | None = None


class DatasetCheck(Record):
    """The group-count check attached to a loaded dataset (``engine.data.check``): found vs
    published per split and group for real datasets, plain ``counts`` for embedded ones."""

    dataset: str | None = None
    layout: str | None = None
    splits: dict[str, CheckSplit] = Field(default_factory=dict)
    counts: dict[str, list[int] | int] = Field(default_factory=dict)
    verdict: str = ""
    max_per_split: int | None = None
    used_counts: dict[str, list[int]] = Field(default_factory=dict)
    ok: bool | None = None  # check-data: the folder would load and its images decode
    problems: list[str] = Field(default_factory=list)


class DatasetInfo(Record):
    name: str = ""
    layout: str = ""
    root: str | None = None


class ExecutorInfo(Record):
    """Where a run ran (``labconsole.engine.executors.where_am_i``)."""

    kind: str = "local"
    host: str | None = None
    cuda_visible_devices: str | None = None
    slurm_job_id: str | None = None
    partition: str | None = None


class Manifest(VersionedRecord):
    """``manifest.json``: what ran, where, with which versions, and how far it got."""

    preset: str = ""
    reproduces: str = ""
    variant: str = ""
    stages: list[str] = Field(default_factory=list)
    seed: int = 0
    smoke: bool = False
    status: str = "running"
    stages_done: list[str] = Field(default_factory=list)
    created: str = ""
    finished: str | None = None
    error: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    git: str | None = None
    device: str = ""
    host: str = ""
    # torch.get_num_threads() when the run started: float sums depend on it, so a resume with
    # another count is warned about. None in runs made before it was recorded.
    torch_threads: int | None = None
    metric_definitions: dict[str, str] = Field(default_factory=dict)
    selection_rule: str = ""
    dataset_check: DatasetCheck | None = None
    dataset: DatasetInfo | None = None
    executor: ExecutorInfo | None = None
    # A console session record (``engine.stage1.session_record``) is a run directory of kind
    # "console-session": the model it was opened on and its groups instead of stages.
    kind: str | None = None
    model: SessionSetup | None = None
    backbone: str | None = None
    group_names: list[str] = Field(default_factory=list)
    train_group_counts: dict[str, int] = Field(default_factory=dict)
    minority_groups: list[str] = Field(default_factory=list)


class EpochRecord(Record):
    """An ``EpochResult`` line of ``metrics.jsonl``: one epoch's evaluation."""

    stage: str = "?"
    epoch: int = 0
    total_epochs: int | None = None
    splits: Splits = Field(default_factory=dict)
    train_loss: float | None = None
    lr: float | None = None
    is_best: bool = False
    best_epoch: int | None = None
    selection: str = ""
