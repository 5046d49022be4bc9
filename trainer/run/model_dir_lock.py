"""One training process per model_dir, enforced with an OS file lock."""

from __future__ import annotations

import fcntl
import os
import socket
from typing import Any, IO, Optional

from gin_trainer.errors import ModelDirInUseError

LOCK_FILE = '.lock'


class ModelDirLock:
  """Holds an exclusive `flock` on `model_dir/.lock` while a run trains.

  The OS drops the lock when its process ends, however it ends (SIGKILL
  included), so a stale lock file never blocks a rerun.

  Args:
    model_dir: The run's directory (must exist).
  """

  def __init__(self, model_dir: str):
    self.path = os.path.join(model_dir, LOCK_FILE)
    self._file: Optional[IO[str]] = None

  def acquire(self) -> None:
    """Takes the lock.

    Raises:
      ModelDirInUseError: Another process holds it; the message names it.
    """
    handle = open(self.path, 'a+')
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      handle.seek(0)
      owner = handle.read().strip() or 'another process'
      handle.close()
      raise ModelDirInUseError(
          f'{os.path.dirname(self.path)} is in use by {owner}; wait for it to finish or stop '
          'it, or give this run another Trainer.model_dir') from None
    handle.seek(0)
    handle.truncate()
    handle.write(f'process {os.getpid()} on {socket.gethostname()}\n')
    handle.flush()
    self._file = handle

  def release(self) -> None:
    """Drops the lock; the file stays, emptied, so a run that fails leaves model_dir as it was."""
    if self._file is not None:
      self._file.truncate(0)  # Before unlocking: the owner's line is only true while it holds it.
      fcntl.flock(self._file, fcntl.LOCK_UN)
      self._file.close()
      self._file = None

  def __enter__(self) -> 'ModelDirLock':
    self.acquire()
    return self

  def __exit__(self, *exc_info: Any) -> None:
    self.release()
