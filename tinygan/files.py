"""Safe files: atomic writes (a reader sees the old file or the new one, never half of one), a run
directory's lock (one writer at a time), and the cleanup of writes that a kill interrupted."""
import fcntl
import os
import tempfile
from pathlib import Path


def write_atomically(path, write):
    """Run ``write(stream)`` into a temporary file beside ``path``, then rename it over ``path``.

    The rename is atomic on one file system, so a crash, a Ctrl-C or an
    exception raised by ``write`` leaves ``path`` as it was and no temporary
    file behind.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)   # mkstemp makes files private; give them the usual mode
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


LOCK = ".lock"


class DirectoryInUse(RuntimeError):
    """Another process holds a run directory's lock."""


class DirectoryLock:
    """Hold ``directory/.lock`` exclusively: one process at a time may write a run directory.

    The lock is an flock on the file, which the operating system releases when
    the process ends in any way (even kill -9): a crashed run never leaves its
    directory locked. The file itself stays; it holds the last owner's pid.
    """

    def __init__(self, directory):
        self.path = Path(directory) / LOCK
        self.handle = open(self.path, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.seek(0)
            owner = self.handle.read().strip() or "another process"
            self.handle.close()
            raise DirectoryInUse(f"{directory} is in use by another tinygan process (pid {owner}): wait for it "
                                 f"to finish, or choose another --out") from None
        self.handle.truncate(0)
        self.handle.write(str(os.getpid()))
        self.handle.flush()

    def release(self):
        if not self.handle.closed:
            self.handle.close()   # closing the file releases the flock


def remove_partial_files(directory):
    """Delete the ``.*.part`` files an interrupted write_atomically left (kill -9 skips its cleanup).

    Only safe while holding the directory's lock: then no write is under way.
    """
    removed = []
    for path in Path(directory).rglob(".*.part"):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed
