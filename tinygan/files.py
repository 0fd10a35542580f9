"""Atomic file writes: a reader sees the old file or the new one, never half of one."""
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
