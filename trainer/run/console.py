"""What the gin-trainer command prints: the framework's lines, each with a short prefix.

TensorFlow logs its start-up from C++ (oneDNN, CUDA probing) before its log
level applies, logs routine work from C++ too (loading compiled programs
from the XLA cache), and its Python logger notes routine work (saving,
strategies). The command starts TensorFlow with that output set aside and
its C++ log level at fatal errors only (an error that matters reaches the
user as a Python exception), and logs its own lines as `HH:MM:SS message`.
A user who sets TF_CPP_MIN_LOG_LEVEL sees TensorFlow's C++ logs as that
level says.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import sys
import tempfile
import warnings
from types import FrameType
from typing import Iterator, Optional

from absl import logging as absl_logging

TF_LOG_LEVEL = 'TF_CPP_MIN_LOG_LEVEL'
FATAL_ONLY = '3'  # TensorFlow's C++ lines print only when the process dies of one.


class _ShortPrefix(logging.Formatter):
  """`HH:MM:SS message`; a warning or an error says which after the time."""

  def __init__(self):
    super().__init__('%(asctime)s %(message)s', datefmt='%H:%M:%S')

  def format(self, record: logging.LogRecord) -> str:
    line = super().format(record)
    if record.levelno >= logging.WARNING:
      line = line.replace(' ', f' {record.levelname.lower()}: ', 1)
    return line


class _NoLibraryNotes(logging.Filter):
  """Drops the info lines TensorFlow and Keras log through absl (e.g. after each save)."""

  def __init__(self):
    super().__init__()
    self._folders = tuple(os.path.dirname(importlib.util.find_spec(name).origin) + os.sep
                          for name in ('tensorflow', 'keras'))

  def filter(self, record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or not record.pathname.startswith(self._folders)


def show_the_framework_lines() -> None:
  """Logs the framework's lines with `_ShortPrefix`; TensorFlow's notes not at all.

  TensorFlow's notes are its info lines and the Python warnings it raises
  about its own internals (e.g. tf.data's under a strategy).
  """
  handler = absl_logging.get_absl_handler()
  handler.setFormatter(_ShortPrefix())
  handler.addFilter(_NoLibraryNotes())
  logging.getLogger('tensorflow').setLevel(logging.WARNING)  # Its own logger, too.
  warnings.filterwarnings('ignore', category=UserWarning, module=r'tensorflow\.')


def start_tensorflow_quietly() -> None:
  """Imports TensorFlow and finds its devices, keeping their C++ lines off the console.

  Nothing is set aside when the user set TF_CPP_MIN_LOG_LEVEL.
  """
  quiet = TF_LOG_LEVEL not in os.environ
  if quiet:
    os.environ[TF_LOG_LEVEL] = FATAL_ONLY
  with _stderr_set_aside() if quiet else contextlib.nullcontext():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf.config.list_physical_devices()  # Probes CUDA, which logs when there is none.


@contextlib.contextmanager
def _stderr_set_aside() -> Iterator[None]:
  """Sends what is written to stderr (fd 2) to a temporary file, printed only on an error.

  Ctrl-C meanwhile restores stderr before its handler runs, so its message shows.
  """
  sys.stderr.flush()
  console = os.dup(2)
  interrupted = signal.getsignal(signal.SIGINT)

  def restore_console(signal_number: int, frame: Optional[FrameType]) -> None:
    os.dup2(console, 2)
    if callable(interrupted):
      interrupted(signal_number, frame)
    else:
      raise KeyboardInterrupt

  with tempfile.TemporaryFile() as set_aside:
    os.dup2(set_aside.fileno(), 2)
    signal.signal(signal.SIGINT, restore_console)
    try:
      yield
    except BaseException:
      os.dup2(console, 2)
      set_aside.seek(0)
      sys.stderr.buffer.write(set_aside.read())
      sys.stderr.flush()
      raise
    finally:
      os.dup2(console, 2)
      os.close(console)
      signal.signal(signal.SIGINT, interrupted)
