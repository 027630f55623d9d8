"""Run directories: ``runs/<YYYYmmdd-HHMMSS>-<preset>-s<seed>/``.

Layout: ``config.toml`` (fully resolved), ``manifest.json``, ``metrics.jsonl`` (append-only,
flushed per line), ``summary.json``, ``checkpoints/*.safetensors`` (+ json sidecar),
``artifacts/`` (tables, figures), ``report.*``, and ``done`` when the run completed.
Every whole-file write is atomic (temp file, fsync, rename) so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import JsonValue

from labconsole.engine.events import Event
from labconsole.engine.records import Manifest, RunSummary, read_record, validate_record

DONE = "done"
STATUS_DONE, STATUS_RUNNING, STATUS_CANCELLED, STATUS_FAILED = "done", "running", "cancelled", "failed"
# A run refused before any stage did work (bad data, bad checkpoint): nothing in it to resume or
# read, so run listings hide it.
STATUS_NEVER_STARTED = "never-started"
STATUS_UNREADABLE = "unreadable"


def _proc_umask() -> int | None:
    """The umask as Linux reports it in /proc/self/status, read without changing it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _umask_at_import() -> int:
    # Without /proc the umask can only be read by setting it, and os.umask is process-wide: a
    # thread writing a file meanwhile would get the temporary mask. So it is read once, while
    # this module is imported (before any worker thread writes a run).
    found = _proc_umask()
    if found is not None:
        return found
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


_IMPORT_UMASK = _umask_at_import()


def current_umask() -> int:
    """The process's umask now where the system says it (Linux), else its value at import."""
    found = _proc_umask()
    return _IMPORT_UMASK if found is None else found


def new_file_mode() -> int:
    """The permissions ``open()`` gives a new file: 0o666 less the umask. ``mkstemp`` makes its
    files owner-only (0o600), which would hide a run from the group on a shared cluster."""
    return 0o666 & ~current_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            os.chmod(tmp, new_file_mode())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` with the file it was about (a failed write on a descriptor names none)."""
    if exc.filename and not str(exc.filename).endswith(".tmp"):
        return exc
    return type(exc)(exc.errno, exc.strerror, str(path))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: object) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value: object) -> object:
    """What ``json.dumps`` cannot write itself: sets and tuples as lists, paths as text, numpy
    and torch scalars as numbers."""
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


@dataclass
class RunDir:
    """A handle on one run directory. Cheap to create; all writes are atomic or append-only."""

    path: Path

    @classmethod
    def create(cls, root: Path, preset: str, seed: int, *, when: float | None = None) -> RunDir:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when or time.time()))
        base = Path(root) / f"{stamp}-{_slug(preset)}-s{seed}"
        base.parent.mkdir(parents=True, exist_ok=True)
        path, n = base, 1
        while True:  # mkdir is the atomic claim: two runs started in the same second get a suffix
            try:
                path.mkdir()
                break
            except FileExistsError:
                n += 1
                path = base.with_name(f"{base.name}-{n}")
        (path / "checkpoints").mkdir()
        (path / "artifacts").mkdir()
        return cls(path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def artifacts(self) -> Path:
        (self.path / "artifacts").mkdir(exist_ok=True)
        return self.path / "artifacts"

    # -- whole files -------------------------------------------------------------------------
    def write_config(self, toml_text: str) -> None:
        atomic_write_text(self.path / "config.toml", toml_text)

    def write_manifest(self, manifest: Manifest | Mapping[str, object]) -> None:
        """Write ``manifest.json``; a plain dict is checked against ``Manifest`` first."""
        target = self.path / "manifest.json"
        record = manifest if isinstance(manifest, Manifest) else validate_record(Manifest, manifest, str(target))
        atomic_write_json(target, record.to_json())

    def update_manifest(self, **fields: JsonValue) -> None:
        manifest = self.manifest()
        manifest.update(fields)
        self.write_manifest(manifest)

    def write_summary(self, summary: RunSummary | Mapping[str, object]) -> None:
        """Write ``summary.json``; a plain dict is checked against ``RunSummary`` first."""
        target = self.path / "summary.json"
        record = summary if isinstance(summary, RunSummary) else validate_record(RunSummary, summary, str(target))
        atomic_write_json(target, record.to_json())

    def write_json(self, relative: str, obj: object) -> Path:
        target = self.path / relative
        atomic_write_json(target, obj)
        return target

    def mark_done(self) -> None:
        atomic_write_text(self.path / DONE, time.strftime("%Y-%m-%dT%H:%M:%S\n"))

    # -- append-only log ----------------------------------------------------------------------
    def append_event(self, event: Event | Mapping[str, object]) -> None:
        record: dict[str, object] = event.to_dict() if isinstance(event, Event) else dict(event)
        record.setdefault("t", time.time())
        line = json.dumps(record, default=_json_default)
        target = self.path / "metrics.jsonl"
        try:
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()
        except OSError as exc:
            raise _naming(exc, target) from exc

    # -- reading ------------------------------------------------------------------------------
    def read_manifest(self) -> Manifest:
        """The typed manifest (empty when there is none); ``RunFormatError`` names the file and
        its schema version when it cannot be read."""
        return read_record(Manifest, self.path / "manifest.json")

    def read_summary(self) -> RunSummary:
        """The typed summary (empty when there is none yet); errors as ``read_manifest``."""
        return read_record(RunSummary, self.path / "summary.json")

    def manifest(self) -> dict[str, JsonValue]:
        """``manifest.json`` as raw JSON ({} when missing or torn); readers use ``read_manifest``."""
        return _read_json(self.path / "manifest.json")

    def summary(self) -> dict[str, JsonValue]:
        """``summary.json`` as raw JSON ({} when missing or torn); readers use ``read_summary``."""
        return _read_json(self.path / "summary.json")

    def config_text(self) -> str:
        p = self.path / "config.toml"
        return p.read_text(encoding="utf-8") if p.exists() else ""

    def events(self, kind: str | None = None) -> Iterator[dict[str, JsonValue]]:
        """Recorded events; a torn last line (crash mid-write) is skipped, not fatal."""
        p = self.path / "metrics.jsonl"
        if not p.exists():
            return
        with open(p, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and (kind is None or record.get("type") == kind):
                    yield record

    @property
    def is_done(self) -> bool:
        return (self.path / DONE).exists()

    def status(self) -> str:
        if self.is_done:
            return STATUS_DONE
        if not (self.path / "manifest.json").exists():
            return "empty"
        try:
            return str(
                json.loads((self.path / "manifest.json").read_text(encoding="utf-8")).get("status", STATUS_RUNNING)
            )
        except (ValueError, AttributeError):  # undecodable bytes, not JSON, not an object
            return STATUS_UNREADABLE


def _read_json(path: Path) -> dict[str, JsonValue]:
    if not path.exists():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def is_run_dir(path: Path) -> bool:
    return (Path(path) / "manifest.json").exists() or (Path(path) / "config.toml").exists()


def list_runs(root: Path) -> list[RunDir]:
    """Run directories under ``root`` (one level, and one more for sweeps), newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found: list[RunDir] = []
    for child in root.iterdir():
        if not child.is_dir() or child.name.startswith("."):
            continue
        if is_run_dir(child):
            found.append(RunDir(child))
        else:
            found.extend(RunDir(grand) for grand in child.iterdir() if grand.is_dir() and is_run_dir(grand))
    return sorted(found, key=lambda r: r.path.name, reverse=True)
