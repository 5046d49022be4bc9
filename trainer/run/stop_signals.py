"""SIGTERM and SIGINT as requests to stop at the end of the current loop."""

from __future__ import annotations

import signal
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
