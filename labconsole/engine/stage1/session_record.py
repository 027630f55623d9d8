"""The record of an interactive Stage I session: every ranking and readout, kept on disk.

A console session writes a directory under ``runs/`` (``<stamp>-console-session-s0/``) with

* ``manifest.json``: ``kind = "console-session"``, the model it used (dataset, data root,
  backbone, checkpoint, device), the group names, training group counts and minority groups;
* ``readouts.jsonl``: one line per ranking (``records.Ranking``) or readout
  (``records.ConsoleReadout``), appended and flushed as it happens, with ``type`` ("ranking" |
  "readout"), ``seq`` and ``t``, so quitting or a crash loses nothing;
* ``done``: written at creation. The record is complete after every line, so it is never
  "interrupted" and never offered for resuming.

Opening a session on the same model again continues its newest record (``open_or_create``), so
the console's history comes back. ``labconsole report <dir>`` renders it like the headless
Stage I readouts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import JsonValue, ValidationError

from labconsole.engine.records import (
    ConsoleReadout,
    DatasetInfo,
    Manifest,
    Ranking,
    RunFormatError,
    SessionSetup,
)
from labconsole.engine.runs import RunDir, list_runs

KIND = "console-session"
READOUTS = "readouts.jsonl"


def same_model(a: SessionSetup, b: SessionSetup) -> bool:
    """The device does not change the model: a record made on cuda continues on cpu."""
    return (a.dataset, a.backbone, a.checkpoint, a.data_root) == (b.dataset, b.backbone, b.checkpoint, b.data_root)


def minority_of(train_group_counts: Mapping[str, int]) -> list[str]:
    """Groups under half the mean training group size (the console's definition)."""
    if not train_group_counts:
        return []
    mean = sum(train_group_counts.values()) / len(train_group_counts)
    return [g for g, n in train_group_counts.items() if n < 0.5 * mean]


class SessionRecord:
    """One session directory. ``append`` is safe to call from a worker thread (one writer)."""

    def __init__(self, path: Path) -> None:
        self.run = RunDir(Path(path))
        self._lock = threading.Lock()
        self._seq = max((_seq_of(line) for line in self.entries()), default=0)

    @property
    def path(self) -> Path:
        return self.run.path

    # -- creating and finding ------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: Path | str,
        model: SessionSetup,
        group_names: Sequence[str],
        train_group_counts: Mapping[str, int],
        *,
        when: float | None = None,
    ) -> SessionRecord:
        run = RunDir.create(Path(root), KIND, 0, when=when)
        run.write_manifest(
            Manifest(
                preset=KIND,
                status="done",
                created=time.strftime("%Y-%m-%dT%H:%M:%S"),
                device=model.device,
                dataset=DatasetInfo(name=model.dataset, root=model.data_root or None),
                # beyond the run manifest: what identifies the session's model and groups
                kind=KIND,
                model=model.model_copy(),
                backbone=model.backbone,
                group_names=list(group_names),
                train_group_counts={str(k): int(v) for k, v in train_group_counts.items()},
                minority_groups=minority_of(train_group_counts),
            )
        )
        run.write_summary({"kind": KIND})  # no training: the readouts are the results
        (run.path / READOUTS).touch()
        run.mark_done()
        return cls(run.path)

    @classmethod
    def find(cls, root: Path | str, model: SessionSetup) -> SessionRecord | None:
        """The newest record of a session on the same model under ``root``, if any."""
        for run in list_runs(Path(root)):  # newest first
            try:
                manifest = run.read_manifest()
            except RunFormatError:  # someone else's or a torn manifest: not a record to continue
                continue
            if manifest.kind == KIND and same_model(manifest.model or SessionSetup(), model):
                return cls(run.path)
        return None

    @classmethod
    def open_or_create(
        cls,
        root: Path | str,
        model: SessionSetup,
        group_names: Sequence[str],
        train_group_counts: Mapping[str, int],
    ) -> SessionRecord:
        found = cls.find(root, model)
        if found is not None and found.manifest().group_names == list(group_names):
            return found
        return cls.create(root, model, group_names, train_group_counts)

    # -- contents --------------------------------------------------------------------------------
    def manifest(self) -> Manifest:
        """The record's manifest (its ``kind``, ``model``, groups); ``RunFormatError`` naming the
        file when it cannot be read."""
        return self.run.read_manifest()

    @property
    def model(self) -> SessionSetup:
        """The model the record was made on (an empty setup where its manifest cannot be read:
        a line is still appended, without the checkpoint it was made on)."""
        try:
            return self.manifest().model or SessionSetup()
        except RunFormatError:
            return SessionSetup()

    def add_ranking(self, ranking: Ranking) -> dict[str, JsonValue]:
        return self._append("ranking", ranking.to_json())

    def add_readout(self, readout: ConsoleReadout) -> dict[str, JsonValue]:
        return self._append("readout", readout.to_json())

    def _append(self, kind: str, payload: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
        """One line, appended and flushed; returns it as written (with ``type``, ``seq``, ``t``)."""
        with self._lock:
            self._seq += 1
            line: dict[str, JsonValue] = {**payload, "type": kind, "seq": self._seq, "t": time.time()}
            line.setdefault("checkpoint", self.model.checkpoint)
            text = json.dumps(line, default=_json_default)
            with open(self.path / READOUTS, "a", encoding="utf-8") as handle:
                handle.write(text + "\n")
                handle.flush()
        return line

    def readouts(self) -> list[ConsoleReadout]:
        """The readout lines as records (a line that does not fit is skipped)."""
        out = []
        for line in self.entries("readout"):
            try:
                out.append(ConsoleReadout.model_validate(line))
            except ValidationError:
                continue
        return out

    def entries(self, kind: str | None = None) -> list[dict[str, JsonValue]]:
        """Every line in order; a torn last line (a crash mid-write) is skipped, not fatal."""
        path = self.path / READOUTS
        if not path.exists():
            return []
        out = []
        for text in path.read_text(encoding="utf-8").splitlines():
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                continue
            if isinstance(line, dict) and (kind is None or line.get("type") == kind):
                out.append(line)
        return out


def _seq_of(line: Mapping[str, JsonValue]) -> int:
    seq = line.get("seq")
    return seq if isinstance(seq, int) else 0


def _json_default(value: object) -> object:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
