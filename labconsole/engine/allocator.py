"""Keep freed tensor memory in the process for the next batch (glibc's malloc on Linux).

By default glibc serves every allocation above a threshold (at most 32 MiB) with a fresh
``mmap`` and returns it to the kernel on ``free``. A forward pass at batch 512 allocates and
frees activations of ~30 MiB per layer, so every batch page-faults all of its memory in again:
on the embedded default that kernel time was as large as the computation itself (one eval pass
over the 4,795 training images: 0.8 s of compute, 1.4 s of page faults on a 2-core CPU). With
``mmap`` off and a high trim threshold the heap keeps the freed blocks, and the next batch
reuses them. The cost: the process keeps up to ``trim_mb`` of freed memory instead of handing
it back at once.

``keep_freed_memory`` is called once by the command-line entry points (console, ``run``,
``bench``); a library user may call it too. Elsewhere (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

_applied: bool | None = None


def keep_freed_memory(trim_mb: int = 1024) -> bool:
    """Tell glibc's malloc to keep freed blocks for reuse (see the module docstring). Returns
    whether the setting is in effect. Off with ``LABCONSOLE_SYSTEM_MALLOC=1``."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux") or os.environ.get("LABCONSOLE_SYSTEM_MALLOC") == "1":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, min(int(trim_mb) << 20, 2**31 - 1)))
    return _applied
