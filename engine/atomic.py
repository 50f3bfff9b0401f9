"""Putting a finished folder in place of another without ever leaving a half-written one.

Checkpoints and prepared datasets are written to a temp folder beside their destination, then
moved in here: an atomic swap where the kernel offers one (Linux renameat2 RENAME_EXCHANGE),
else two renames with the old folder kept aside until the new one is in.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Iterator


def replace_folder(new: Path, dest: Path, aside: Path) -> None:
    """Move `new` to `dest`, replacing a folder there. Without an atomic swap the old folder
    is renamed to `aside` first (put back if the second rename fails) and removed at the end;
    a process killed between the renames leaves it complete at `aside`."""
    if not dest.exists():
        os.rename(new, dest)
    elif exchange(new, dest):
        shutil.rmtree(new)  # now holds the previous folder
    else:
        os.rename(dest, aside)
        try:
            os.rename(new, dest)
        except BaseException:
            os.rename(aside, dest)
            raise
        shutil.rmtree(aside)
    fsync_path(dest.parent)


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two folders (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def fsync_path(p: Path) -> None:
    """fsync a file or folder by path (a folder: so a rename inside it survives a power cut)."""
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Cleanup that must finish: ctrl+c (SIGINT) and SIGTERM are ignored inside, in the main
    thread (elsewhere signals cannot be changed, and are not delivered anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in held.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
