"""Disk problems told as what they are: which file could not be written, why, and what to do.

A full, read-only or foreign folder is the user's to fix (exit 2), not a crash; a run stopped
by a full disk keeps everything it finished and resumes once there is space again.
"""

from __future__ import annotations

import errno

from labconsole.errors import StorageError

FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def storage_error(exc: OSError, *, resume_hint: str = "") -> StorageError | None:
    """The StorageError to show for ``exc``, or None when it is not a disk problem."""
    if exc.errno not in FULL + NOT_WRITABLE:
        return None
    target = exc.filename or "a file"
    if exc.errno in FULL:
        what = "the disk is full" if exc.errno != errno.EDQUOT else "the disk quota is used up"
        todo = "free some space" + (f", then {resume_hint}" if resume_hint else " and run it again")
    else:
        what = "the folder is read-only" if exc.errno == errno.EROFS else "permission denied"
        todo = "choose a folder you can write to (--out DIR) or fix its permissions"
    return StorageError(f"cannot write {target}: {what} ({exc.strerror or exc}); {todo}")
