"""TensorBoard scalars for train/ and val/, written once per interval."""

from __future__ import annotations

import os
from typing import Callable, ContextManager, Dict, Optional

import gin
import tensorflow as tf
from absl import logging

from trainer import progress
from trainer.intervals import Interval

X_AXES = ('auto', 'epoch', 'step')


@gin.configurable(denylist=['model_dir', 'steps_per_epoch', 'total_steps', 'batch_size'])
class SummaryManager:
  """Writes the means of a run's scalars to `model_dir/train` and `model_dir/val`.

  The train scalars written at the end of an interval are the **means over
  the steps of that interval**, written at the interval's last step: a point
  at step 200 with `every_n_steps=100` is the mean over steps 101..200. The
  Trainer runs its on-device loops so that they end exactly on interval
  boundaries, so no interval is ever split or skipped; if training ends
  inside an interval, that last partial interval is written at the final
  step. Beside the scalars the train step returns, the train writer gets:

  - `steps_per_second` and `examples_per_second`: training throughput over
    the interval (time spent in train loops only, not in evaluation,
    checkpointing or writing);
  - `learning_rate`: the mean rate the optimizer applied over the interval;
  - with `gradient_stats`, `gradients/global_norm` and one
    `gradients/variance/<variable>` per trainable variable (means of the
    per-step values), computed on device by the train step.

  The val scalars are those of one evaluation, written at the step the
  evaluation ran.

  X-axis: with an interval in epochs, points are written at the epoch
  number (1, 2, 3, ...), as Keras and the TensorBoard tutorial do, provided
  evaluation also runs on epoch boundaries and training lasts whole epochs;
  otherwise, or with `x_axis='step'`, at the global step.

  Args:
    model_dir: The run's directory (given by the Trainer).
    steps_per_epoch: Training steps per epoch, or None if unknown (Trainer).
    total_steps: The step training ends at (Trainer), for the ETA.
    batch_size: Examples per training step (Trainer).
    every_n_steps: Write train scalars every this many steps.
    every_n_epochs: Or every this many epochs (give exactly one of the two;
      with neither, every 100 steps).
    x_axis: 'auto' (epoch when the interval is in epochs, see above),
      'epoch' (error if impossible) or 'step'.
    gradient_stats: Also log gradient statistics (see above).
    log_progress: Log one progress line per interval (step, epoch, scalars,
      steps/sec, ETA).
  """

  def __init__(self,
               model_dir: str,
               steps_per_epoch: Optional[int],
               total_steps: int,
               batch_size: int,
               every_n_steps: Optional[int] = None,
               every_n_epochs: Optional[int] = None,
               x_axis: str = 'auto',
               gradient_stats: bool = False,
               log_progress: bool = True):
    if every_n_steps is None and every_n_epochs is None:
      every_n_steps = 100
    self.interval = Interval.from_either(('SummaryManager.every_n_steps', every_n_steps),
                                         ('SummaryManager.every_n_epochs', every_n_epochs))
    if x_axis not in X_AXES:
      raise ValueError(f'SummaryManager.x_axis is one of {X_AXES}, not {x_axis!r}')
    self.x_axis = x_axis
    self.gradient_stats = gradient_stats
    self.log_progress = log_progress
    self.steps_per_epoch = steps_per_epoch
    self.total_steps = total_steps
    self.batch_size = batch_size
    self.model_dir = model_dir
    self._writers: Dict[str, tf.summary.SummaryWriter] = {}  # Made on first write.
    self._write_fns: Dict[str, Callable[..., Dict[str, tf.Tensor]]] = {}
    self._epoch_axis = False
    self._reset()

  def use_epoch_axis(self, possible: bool) -> None:
    """Settles the x-axis, once the Trainer knows its schedule.

    Args:
      possible: Whether every point will fall on an epoch boundary (the
        interval is in epochs, evaluation runs on epoch boundaries and
        training lasts whole epochs).

    Raises:
      ValueError: `x_axis='epoch'` was asked for but is not possible.
    """
    if self.x_axis == 'epoch' and not possible:
      raise ValueError(
          "SummaryManager.x_axis='epoch' needs every point on an epoch boundary: "
          'give SummaryManager.every_n_epochs, Trainer.eval_every_n_epochs and '
          "Trainer.train_epochs, or use x_axis='step'")
    self._epoch_axis = possible and self.x_axis != 'step'

  def x(self, step: int) -> int:
    """The x-axis value of global step `step`."""
    return step // self.steps_per_epoch if self._epoch_axis else step

  def _reset(self) -> None:
    self._sums: Optional[Dict[str, tf.Tensor]] = None
    self._steps = 0
    self._seconds = 0.0

  def record(self, sums: Dict[str, tf.Tensor], num_steps: int, seconds: float) -> None:
    """Adds one train loop's sums to the current interval (no device sync).

    Args:
      sums: Per scalar, its sum over the loop's steps (device tensors).
      num_steps: Steps the loop ran.
      seconds: Wall time the loop took.
    """
    if self._sums is None:
      self._sums = dict(sums)
    else:
      self._sums = {name: self._sums[name] + sums[name] for name in self._sums}
    self._steps += num_steps
    self._seconds += seconds

  def write_train(self, step: int) -> Dict[str, float]:
    """Writes the interval's means (and throughput) at `step`, then resets.

    Returns:
      The values written, by tag.
    """
    steps_per_second = self._steps / max(self._seconds, 1e-9)
    values = self._write('train', step, self._sums, self._steps, {
        'steps_per_second': steps_per_second,
        'examples_per_second': steps_per_second * self.batch_size})
    if self.log_progress:
      logging.info('%s', progress.line(step, self.total_steps, self.steps_per_epoch, values))
    self._reset()
    return values

  def write_val(self, step: int, means: Dict[str, tf.Tensor]) -> Dict[str, float]:
    """Writes one evaluation's means at `step`.

    Returns:
      The values written, by tag.
    """
    values = self._write('val', step, means, 1, {})
    if self.log_progress:
      logging.info('validation at step %d: %s', step, progress.scalars_text(values))
    return values

  def write_text(self, tag: str, markdown: str, step: int) -> None:
    """Writes a text summary (e.g. the operative gin config) to train/."""
    with self.as_default('train', step):
      tf.summary.text(tag, markdown)

  def as_default(self, split: str, step: int) -> ContextManager[None]:
    """Makes `split`'s writer the default at `step`, for any `tf.summary` call."""
    return self._writer(split).as_default(step=self.x(step))

  def _writer(self, split: str) -> tf.summary.SummaryWriter:
    if split not in self._writers:
      self._writers[split] = tf.summary.create_file_writer(os.path.join(self.model_dir, split))
    return self._writers[split]

  def _write(self, split: str, step: int, sums: Dict[str, tf.Tensor], count: int,
             extra: Dict[str, float]) -> Dict[str, float]:
    """Writes `sums / count` and `extra` at `step` in one graph call; returns them all."""
    if split not in self._write_fns:
      writer = self._writer(split)

      @tf.function
      def write(x, sums, count, extra):
        values = {**{name: total / count for name, total in sums.items()}, **extra}
        with writer.as_default(step=x):
          for name, value in values.items():
            tf.summary.scalar(name, value)
        return values

      self._write_fns[split] = write
    values = self._write_fns[split](
        tf.constant(self.x(step), tf.int64), sums, tf.constant(count, tf.float32),
        {name: tf.constant(value, tf.float32) for name, value in extra.items()})
    return {name: float(value) for name, value in values.items()}

  def flush(self) -> None:
    """Pushes everything written so far to the event files."""
    for writer in self._writers.values():
      writer.flush()
