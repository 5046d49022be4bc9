"""The running sums of the current summary interval, and each interval's means."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence

import tensorflow as tf


class IntervalSums:
  """Adds the parts of loops to the current summary interval; ends intervals as means.

  A loop's call returns the sums of its scalars over each of its parts (a
  part ends at a summary boundary or at the loop's end), and the host's
  time of the call. An interval is one part or several (of consecutive
  loops); its point holds each scalar's mean over its steps, and its
  throughput. The interval so far is saved with checkpoints, so a run
  resumed mid-interval writes the same means as an uninterrupted one.

  Args:
    names: The scalars the train step returns, in the loop's order.
  """

  def __init__(self, names: Sequence[str]):
    self.names = list(names)
    self._sums = [0.0] * len(self.names)
    self._steps = 0
    self._seconds = 0.0
    # Written only before a checkpoint and read only after a restore (see `save`).
    self._saved_sums = tf.Variable(tf.zeros([len(self.names)], tf.float64), trainable=False,
                                   name='interval_sums')
    self._saved_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name='interval_steps')
    self._saved_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                      name='interval_seconds')

  def add(self, sums: Sequence[float], steps: int, seconds: float) -> None:
    """Adds one part: each scalar's sum over its `steps` steps, and their time."""
    self._sums = [total + value for total, value in zip(self._sums, sums)]
    self._steps += steps
    self._seconds += seconds

  def end(self) -> Dict[str, float]:
    """Ends the interval: each scalar's mean over its steps, and `steps_per_second`.

    The sums start again from zero.
    """
    means = {name: total / self._steps for name, total in zip(self.names, self._sums)}
    means['steps_per_second'] = (self._steps / self._seconds if self._seconds > 0
                                 else float('nan'))
    self._sums = [0.0] * len(self.names)
    self._steps, self._seconds = 0, 0.0
    return means

  def checkpoint_items(self) -> Mapping[str, Any]:
    """The variables a checkpoint saves the interval so far in."""
    return {'sums': self._saved_sums, 'steps': self._saved_steps, 'seconds': self._saved_seconds}

  def save(self) -> None:
    """Copies the interval so far into its variables, before a checkpoint."""
    self._saved_sums.assign(self._sums)
    self._saved_steps.assign(self._steps)
    self._saved_seconds.assign(self._seconds)

  def restore(self) -> None:
    """Takes the interval so far from its variables, after a checkpoint is restored."""
    self._sums = self._saved_sums.numpy().tolist()
    self._steps = int(self._saved_steps.numpy())
    self._seconds = float(self._saved_seconds.numpy())
