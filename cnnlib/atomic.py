"""Writing a file atomically: it holds either its old content or the complete new one, never half.

    atomic_write("data/models/net.npz", lambda f: np.savez_compressed(f, **arrays))

The bytes go to a uniquely named temporary file in the destination's folder (the same file
system, so the final rename is atomic), which is flushed to disk and then renamed onto the
destination with ``os.replace``. If ``write`` raises, or the process is interrupted, the
temporary file is removed and a file already at the destination is left as it was.

Every file cnnlib writes (MNIST files, model files, the CLI's predictions) goes through here.

A process killed outright (SIGKILL, power loss) cannot remove its temporary file, so each one
is named after the writing process, ``NAME.partial-PID-XXXXXXXX.tmp``, and the next write of
NAME removes those whose process is gone.

What it trades away: no locking (two writers of one path: the last rename wins); a leftover
whose process id was reused stays until that process ends (it is only wasted space, safe to
delete).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(f)`` on a binary file object, then put what it wrote at ``path`` atomically.

    path: the destination; missing folders are created. write: writes the content to ``f``
    (binary mode); anything it raises propagates, and then nothing at ``path`` changes.
    The file gets permissions 0o644 as far as the umask allows (mkstemp would leave it private).
    Returns ``path`` as a Path.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder, path.name)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f"{path.name}.partial-{os.getpid()}-",
                                    suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o644 & ~umask)
        os.replace(tmp_name, path)
        if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
            dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _remove_leftovers(folder: Path, name: str) -> None:
    """Remove ``name``'s temporary files left in ``folder`` by writers that no longer run (killed
    mid-write); a live writer's file (another process's, or this one's) is left alone."""
    pattern = re.compile(re.escape(name) + r"\.partial-(\d+)-[a-z0-9_]+\.tmp")
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for entry in names:
        match = pattern.fullmatch(entry)
        if match and not _running(int(match.group(1))):
            try:
                os.unlink(folder / entry)
            except OSError:     # gone already, or not ours to remove: the write goes on
                pass


def _running(pid: int) -> bool:
    """Whether a process with this id exists (a process of another user counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
