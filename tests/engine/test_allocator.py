"""The command-line entry points keep freed tensor memory in the heap (glibc), once, with a way out."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import ctypes, sys
from labconsole.engine import allocator
applied = allocator.keep_freed_memory()
again = allocator.keep_freed_memory()
# mallinfo2: a large block freed stays in the heap (fordblks) instead of being unmapped (hblkhd).
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
block = libc.malloc(64 << 20)
mapped = libc.mallinfo2().hblkhd
libc.free(block)
print(applied, again, mapped >= (64 << 20), libc.mallinfo2().fordblks >= (64 << 20))
"""


def _run(env: dict[str, str]) -> list[str]:
    import os

    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env={**os.environ, **env}, check=True
    )
    return done.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_blocks_stay_in_the_heap_once_set_and_not_without_it() -> None:
    applied, again, mapped, kept = _run({"LABCONSOLE_SYSTEM_MALLOC": "0"})
    assert (applied, again) == ("True", "True")  # set once; a second call says it is in effect
    assert (mapped, kept) == ("False", "True")  # a 64 MiB block came from the heap and stays there
    applied, again, mapped, kept = _run({"LABCONSOLE_SYSTEM_MALLOC": "1"})
    assert (applied, again) == ("False", "False")
    assert (mapped, kept) == ("True", "False")  # the system default: mapped, and unmapped on free
