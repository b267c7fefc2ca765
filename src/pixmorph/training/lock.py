"""One writer per run folder: a lock file held with flock while a training writes there."""

from __future__ import annotations

import datetime
import fcntl
import json
import logging
import os
import socket
from pathlib import Path
from types import TracebackType

from pixmorph.checkpoint import remove_stale_temps

log = logging.getLogger(__name__)

LOCK_NAME = "train.lock"


class RunLockedError(RuntimeError):
    """Another live process trains into the same run folder."""


def _holder_text(info: dict[str, object]) -> str:
    return (
        f"pid {info.get('pid', '?')} on host {info.get('host', '?')}, "
        f"started {info.get('started', '?')}"
    )


class RunLock:
    """An exclusive lock on a run folder: the file names the holder (PID, host, start time).

    The kernel drops a flock when its process dies, so a lock left by a killed training is
    free to take; its file still names the dead holder, which is logged as a take-over.
    """

    def __init__(
        self, root: str | Path, checkpoints: str | Path | None = None, enabled: bool = True
    ) -> None:
        self.path = Path(root) / LOCK_NAME
        self.checkpoints = Path(checkpoints) if checkpoints is not None else None
        self.enabled = enabled  # False on the other ranks of a parallel job: only rank 0 locks
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock (or raise RunLockedError naming the live holder), then clean up.

        With the lock held nobody else can be saving, so temporary files in the checkpoint
        folder are leftovers of a killed save and are removed.
        """
        if not self.enabled:
            return
        self._lock()
        if self.checkpoints is not None:
            removed = remove_stale_temps(self.checkpoints)
            if removed:
                log.warning(
                    "removed %d temp files left in %s by an interrupted save",
                    len(removed),
                    self.checkpoints,
                )

    def _lock(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = _read(fd)
                os.close(fd)
                raise RunLockedError(
                    f"{self.path.parent} is in use by another training ({_holder_text(info)}); "
                    "wait for it to finish, stop it, or choose another --out"
                ) from None
            # a releasing holder may have unlinked the file we opened: lock the file on disk
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stale = _read(fd)
        if stale.get("pid"):
            log.warning(
                "took over the lock of %s from a training that is gone (%s)",
                self.path.parent,
                _holder_text(stale),
            )
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and drop the lock."""
        if self._fd is None:
            return
        # unlink while still holding the lock, so nobody locks a file about to vanish
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read(fd: int) -> dict[str, object]:
    """The holder's record in an open lock file ({} if empty or torn)."""
    try:
        data = os.pread(fd, 4096, 0)
        info = json.loads(data.decode()) if data else {}
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}
