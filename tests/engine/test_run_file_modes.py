"""Files in a run directory get the permissions a plain ``open()`` would give them (0o666 less
the umask), not the owner-only 0o600 of a temporary file, so a group can read runs on a cluster."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labconsole.engine import runs
from labconsole.engine.runs import atomic_write_bytes, atomic_write_text

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o027])
def test_atomic_write_gives_the_mode_open_would(tmp_path: Path, umask: None, mask: int) -> None:
    os.umask(mask)
    atomic_write_bytes(tmp_path / "summary.json", b"{}")
    with open(tmp_path / "plain.json", "wb") as handle:
        handle.write(b"{}")
    assert _mode(tmp_path / "summary.json") == _mode(tmp_path / "plain.json") == 0o666 & ~mask


def test_overwriting_a_file_keeps_the_umask_mode(tmp_path: Path, umask: None) -> None:
    os.umask(0o002)
    atomic_write_text(tmp_path / "manifest.json", "{}")
    atomic_write_text(tmp_path / "manifest.json", '{"status": "done"}')
    assert _mode(tmp_path / "manifest.json") == 0o664
    assert not list(tmp_path.glob(".*.tmp"))


def test_umask_is_read_without_changing_it(umask: None) -> None:
    os.umask(0o027)
    assert runs.current_umask() == (0o027 if Path("/proc/self/status").exists() else runs._IMPORT_UMASK)
    assert os.umask(0o027) == 0o027  # still what was set: reading it did not touch it


def test_without_proc_the_umask_from_import_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs, "_proc_umask", lambda: None)
    monkeypatch.setattr(runs, "_IMPORT_UMASK", 0o077)
    atomic_write_bytes(tmp_path / "done", b"")
    assert _mode(tmp_path / "done") == 0o600
    monkeypatch.setattr(runs, "_IMPORT_UMASK", 0o022)
    atomic_write_bytes(tmp_path / "done", b"")
    assert _mode(tmp_path / "done") == 0o644
