"""SIGTERM and SIGINT: requests to stop at the end of the current loop, within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from types import FrameType
from typing import Any, Dict, Optional

from absl import logging

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequests:
  """While active, SIGTERM and SIGINT set `requested` instead of killing the run.

  The Trainer checks `requested` after each loop, then saves a checkpoint,
  flushes summaries and stops. A second SIGINT (Ctrl-C twice) raises
  KeyboardInterrupt at once. Outside the main thread (where Python cannot
  install handlers) this does nothing.
  """

  def __init__(self):
    self.signal_number: Optional[int] = None
    self._previous: Dict[int, Any] = {}

  @property
  def requested(self) -> bool:
    return self.signal_number is not None

  def __enter__(self) -> 'StopRequests':
    if threading.current_thread() is threading.main_thread():
      for number in SIGNALS:
        self._previous[number] = signal.signal(number, self._handle)
    return self

  def __exit__(self, *exc_info: Any) -> None:
    for number, handler in self._previous.items():
      signal.signal(number, handler)
    self._previous.clear()

  def _handle(self, number: int, frame: Optional[FrameType]) -> None:
    del frame
    if self.requested and number == signal.SIGINT:
      raise KeyboardInterrupt
    self.signal_number = number
    logging.warning('%s received: stopping after the current loop, with a checkpoint.',
                    signal.Signals(number).name)


def stop_within(grace_seconds: float) -> None:
  """Kills the process `grace_seconds` after SIGINT or SIGTERM if it has not ended by itself.

  Python runs signal handlers in the main thread between bytecodes, so
  while TensorFlow holds that thread, and the interpreter's lock (building
  a strategy, waiting for another worker), no handler and no other thread
  runs. The interpreter's C handler still writes each signal's number to a
  wakeup file descriptor; a small watchdog process (`stop_watchdog.py`)
  reads it and, if this process still runs when the grace period ends (one
  second after a second signal), says so and kills it (exit 137). What was
  saved stays; a rerun resumes from the last checkpoint. Call it from the
  main thread, once, after the signal handlers are set.

  Args:
    grace_seconds: How long the run may take to stop by itself (finish the
      current loop and save a checkpoint).
  """
  read_end, write_end = os.pipe()
  os.set_blocking(write_end, False)
  signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
  # Its own session: Ctrl-C in a terminal signals the run, not the watchdog.
  subprocess.Popen(  # pylint: disable=consider-using-with  (it outlives this call)
      [sys.executable, '-S', os.path.join(os.path.dirname(__file__), 'stop_watchdog.py'),
       str(read_end), str(os.getpid()), str(grace_seconds)],
      pass_fds=[read_end], start_new_session=True, stdin=subprocess.DEVNULL)
  os.close(read_end)
