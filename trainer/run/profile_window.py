"""A profiler trace of chosen training steps, for TensorBoard's Profile tab."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, List, Optional, Tuple

import tensorflow as tf
from absl import logging

PROFILE_DIR = os.path.join('plugins', 'profile')  # Under the run's directory, as TensorBoard reads.


class ProfileWindow:
  """Traces the loops that run global steps `first..last` with TensorFlow's profiler.

  Loops end just before `first` and at `last` (`ends`), so the trace holds
  those steps and no others; each loop call is one step of the trace. It
  is written under `logdir/plugins/profile/<time>/`, where TensorBoard's
  Profile tab (the `tensorboard-plugin-profile` package) finds it. A run
  resumed inside the window traces the rest of it.

  Args:
    steps: `(first, last)`, or None to trace nothing.
    logdir: The run directory the trace belongs to (the train run's).
  """

  def __init__(self, steps: Optional[Tuple[int, int]], logdir: str):
    self.steps = steps
    self.logdir = logdir
    self._tracing = False

  def ends(self) -> List[int]:
    """The global steps at which loops must end."""
    if self.steps is None:
      return []
    first, last = self.steps
    return [step for step in (first - 1, last) if step > 0]

  @contextlib.contextmanager
  def loop(self, start_step: int, end_step: int) -> Iterator[None]:
    """Around one loop's call: traces it if its steps (after `start_step`) are in the window."""
    if self.steps is None or not self.steps[0] - 1 <= start_step < self.steps[1]:
      yield
      return
    if not self._tracing:
      tf.profiler.experimental.start(self.logdir)
      self._tracing = True
    with tf.profiler.experimental.Trace('train', step_num=end_step, _r=1):
      yield
    if end_step >= self.steps[1]:
      self.close()
      logging.info("Profile of steps %d-%d written to %s: TensorBoard's Profile tab shows it "
                   "(pip install 'gin-trainer[profile]').", max(self.steps[0], 1),
                   self.steps[1], os.path.join(self.logdir, PROFILE_DIR))

  def close(self) -> None:
    """Stops a trace in progress, writing what it holds (e.g. when the run stops inside it)."""
    if self._tracing:
      self._tracing = False
      tf.profiler.experimental.stop()
