"""The running sums of the current summary interval, and each interval's means."""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Sequence

import tensorflow as tf

from gin_trainer.summaries import tags


class IntervalSums:
  """Adds the parts of loops to the current summary interval; ends intervals as means.

  A loop's call returns the sums of its scalars over each of its parts (a
  part ends at a summary boundary or at the loop's end), and the host's
  time of the call. An interval is one part or several (of consecutive
  loops); its point holds each scalar's mean over its steps, and its
  throughput. The interval so far is saved with checkpoints, so a run
  resumed mid-interval writes the same means as an uninterrupted one. It
  is saved as text (JSON, exact for floats) in one string variable, so a
  run resumed with other summary settings (more scalars, another interval)
  still fits its checkpoint; its interval then starts afresh.

  Args:
    names: The scalars the train step returns, in the loop's order.
  """

  def __init__(self, names: Sequence[str]):
    self.names = list(names)
    self._sums = [0.0] * len(self.names)
    self._steps = 0
    self._seconds = 0.0
    # Written only before a checkpoint and read only after a restore (see `save`).
    self._saved = tf.Variable('', dtype=tf.string, trainable=False, name='interval_so_far')

  def add(self, sums: Sequence[float], steps: int, seconds: float) -> None:
    """Adds one part: each scalar's sum over its `steps` steps, and their time."""
    self._sums = [total + value for total, value in zip(self._sums, sums)]
    self._steps += steps
    self._seconds += seconds

  def end(self) -> Dict[str, float]:
    """Ends the interval: each scalar's mean over its steps, and `tags.STEPS_PER_SECOND`.

    The sums start again from zero.
    """
    means = {name: total / self._steps for name, total in zip(self.names, self._sums)}
    means[tags.STEPS_PER_SECOND] = (self._steps / self._seconds if self._seconds > 0
                                 else float('nan'))
    self._sums = [0.0] * len(self.names)
    self._steps, self._seconds = 0, 0.0
    return means

  def checkpoint_items(self) -> Mapping[str, Any]:
    """The variable a checkpoint saves the interval so far in."""
    return {'interval_so_far': self._saved}

  def save(self) -> None:
    """Copies the interval so far into its variable, before a checkpoint."""
    self._saved.assign(json.dumps({'names': self.names, 'sums': self._sums,
                                   'steps': self._steps, 'seconds': self._seconds}))

  def restore(self, steps: int) -> bool:
    """Takes the interval so far from its variable, after a checkpoint is restored.

    Args:
      steps: How many steps the current interval holds at the restored step.

    Returns:
      Whether the saved interval is this one: False (the interval then
      starts empty) when nothing was saved, or the scalars or the
      interval's length changed since.
    """
    saved = json.loads(self._saved.numpy().decode() or 'null')
    if not saved or saved['names'] != self.names or saved['steps'] != steps:
      return False
    self._sums, self._steps, self._seconds = saved['sums'], saved['steps'], saved['seconds']
    return True
