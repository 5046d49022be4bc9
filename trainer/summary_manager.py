"""TensorBoard scalars for train/ and val/, written once per interval.

Each train loop returns its sums, per interval it ran in, which the host
adds to the intervals', with their share of the loop call's time, measured
on the host. So a point is known once the call that ends its interval is
over. The host serializes it, as an evaluation's, with the wall time of
that moment, and appends it to the split's event file (`EventFile`), so a
loop's call does nothing but train and evaluate.

Resumed runs never write a point twice: when a run starts, the highest step
of each tag already on disk is that tag's high-water mark, and points up to
it (recomputed after resuming from an earlier checkpoint) are not written
again. With a seed, the recomputed values equal the ones on disk, so the
curves are exactly those of an uninterrupted run, and TensorBoard can be
left running. Marks are kept per tag because a resumed run may log tags its
files lack (e.g. with `gradient_stats` turned on): those start at their
first point.
"""

from __future__ import annotations

import contextlib
import operator
import os
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import gin
import tensorflow as tf
from absl import logging

from trainer import event_files
from trainer.errors import ConfigError
from trainer.event_file import EventFile
from trainer import progress
from trainer.intervals import Interval
from trainer.point_protos import PointEncoder

X_AXES = ('auto', 'epoch', 'step')


@gin.configurable(denylist=['model_dir', 'steps_per_epoch', 'total_steps', 'batch_size'])
class SummaryManager:
  """Writes the means of a run's scalars to `model_dir/train` and `model_dir/val`.

  The train scalars written at the end of an interval are the **means over
  the steps of that interval**, written at the interval's last step: a point
  at step 200 with `every_n_steps=100` is the mean over steps 101..200. The
  Trainer's on-device loops keep the sums of the intervals they run across
  apart, so no interval is mixed with another or skipped; if training ends
  inside an interval, that last partial interval is written at the final
  step. Beside the scalars the train step returns, the train writer gets:

  - `steps_per_second` and `examples_per_second`: training throughput over
    the interval, timed on the host around its loops' calls (the train
    steps, and an evaluation that ends a loop; not checkpointing, writing
    points, hooks or tracing; the first interval
    includes XLA's compilation, and the first with an evaluation, its
    compilation); a call that runs several intervals shares its time among
    them by steps;
  - `learning_rate`: the mean rate the optimizer applied over the interval;
  - with `gradient_stats`, `gradients/global_norm` and one
    `gradients/variance/<variable>` per trainable variable (means of the
    per-step values), computed on device by the train step.

  The val scalars are those of one evaluation, written at the step the
  evaluation ran.

  X-axis: with an interval in epochs, points are written at the epoch
  number (1, 2, 3, ...), as Keras and the TensorBoard tutorial do, provided
  evaluation also runs on epoch boundaries and training lasts whole epochs;
  otherwise, or with `x_axis='step'`, at the global step. A point's wall
  time is when the host got its values: the points of one loop share it.

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
    flush_every_n_seconds: Push what was written to the event files once
      this long has passed, at the end of a loop (and at every checkpoint).
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
               log_progress: bool = True,
               flush_every_n_seconds: float = 5.0):
    if every_n_steps is None and every_n_epochs is None:
      every_n_steps = 100
    self.interval = Interval.from_either(('SummaryManager.every_n_steps', every_n_steps),
                                         ('SummaryManager.every_n_epochs', every_n_epochs))
    if x_axis not in X_AXES:
      raise ConfigError(f'SummaryManager.x_axis is one of {X_AXES}, not {x_axis!r}')
    self.x_axis = x_axis
    self.gradient_stats = gradient_stats
    self.log_progress = log_progress
    self.steps_per_epoch = steps_per_epoch
    self.total_steps = total_steps
    self.batch_size = batch_size
    self.model_dir = model_dir
    # Per split; None where this process writes nothing (not a cluster's chief).
    self._files: Dict[str, Optional[EventFile]] = {}
    self._epoch_axis = False
    # The interval so far (sums in the train scalars' order, steps, seconds),
    # kept on the host, and in variables for checkpoints only (see `settle`).
    self._sums: List[float] = []
    self._steps = self._seconds = 0.0
    self._saved_sums: Dict[str, tf.Variable] = {}
    self._saved_steps, self._saved_seconds = (
        tf.Variable(0.0, dtype=tf.float64, trainable=False, name=f'interval_{what}')
        for what in ('steps', 'seconds'))
    self._train_scalars: List[str] = []
    self._eval_scalars: List[str] = []
    self._encoders: Dict[str, PointEncoder] = {}
    self.flush_every_n_seconds = flush_every_n_seconds
    self._last_flush = time.monotonic()
    self._on_disk: Dict[str, Dict[str, int]] = {}  # split -> tag -> last step written.
    self._highest_mark: Dict[str, int] = {}  # split -> the highest of its points' tags' marks.

  def use_epoch_axis(self, possible: bool) -> None:
    """Settles the x-axis, once the Trainer knows its schedule.

    Args:
      possible: Whether every point will fall on an epoch boundary (the
        interval is in epochs, evaluation runs on epoch boundaries and
        training lasts whole epochs).

    Raises:
      ConfigError: `x_axis='epoch'` was asked for but is not possible.
    """
    if self.x_axis == 'epoch' and not possible:
      raise ConfigError(
          "SummaryManager.x_axis='epoch' needs every point on an epoch boundary: "
          'give SummaryManager.every_n_epochs, Trainer.eval_every_n_epochs and '
          "Trainer.train_epochs, or use x_axis='step'")
    self._epoch_axis = possible and self.x_axis != 'step'

  @property
  def interval_steps(self) -> int:
    """The summary interval in global steps."""
    return self.interval.in_steps(self.steps_per_epoch)

  def x(self, step: int) -> int:
    """The x-axis value of global step `step`."""
    return step // self.steps_per_epoch if self._epoch_axis else step

  def track(self, train_scalars: Sequence[str], eval_scalars: Sequence[str]) -> None:
    """Learns the scalars of the train and eval steps; starts the interval's sums."""
    self._train_scalars, self._eval_scalars = list(train_scalars), list(eval_scalars)
    self._encoders = {'train': PointEncoder(self.train_tags),
                      'val': PointEncoder(self._eval_scalars)}
    self._sums = [0.0] * len(self._train_scalars)
    for name in train_scalars:
      if name not in self._saved_sums:
        self._saved_sums[name] = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                             name=f'interval_sum_{len(self._saved_sums)}')

  def checkpoint_items(self) -> Dict[str, Any]:
    """The interval so far: a run resumed mid-interval writes the same means."""
    return {'summary_interval': {'sums': self._saved_sums, 'steps': self._saved_steps,
                                 'seconds': self._saved_seconds}}

  def open(self, splits: Sequence[str], write: bool = True) -> None:
    """Creates the event files of `splits` and reads the high-water mark of each tag.

    Files are created here, when a run starts training, not before, so a
    finished run rerun leaves no empty event files behind.

    Args:
      splits: 'train', and 'val' if the run evaluates.
      write: False for a worker that is not the chief of a cluster: it
        writes nothing.
    """
    for split in splits:
      if split in self._files:
        continue
      if not write:
        self._on_disk[split] = {}
        self._files[split] = None
        continue
      log_dir = os.path.join(self.model_dir, split)
      self._on_disk[split] = event_files.last_steps(log_dir)
      if self._on_disk[split]:
        logging.info('%s already holds points up to %s %d; they are not written again.',
                     log_dir, 'epoch' if self._epoch_axis else 'step',
                     max(self._on_disk[split].values()))
      self._files[split] = EventFile(log_dir)
      marks = self._on_disk[split]
      self._highest_mark[split] = max(marks.get(tag, -1) for tag in self._encoders[split].tags)

  @property
  def train_tags(self) -> List[str]:
    """The tags of a train point, in order."""
    return [*self._train_scalars, *progress.THROUGHPUT]

  def others_new(self, split: str, known_tags: Sequence[str], step: int) -> bool:
    """Whether a point at `step` is past the marks of `split`'s other tags (e.g. images).

    True when there are none: an extra hook then runs, and writes what it writes.
    """
    others = [last for tag, last in self._on_disk[split].items() if tag not in known_tags]
    return not others or self.x(step) > max(others)

  def maybe_flush(self) -> None:
    """Flushes if `flush_every_n_seconds` have passed since the last flush."""
    if time.monotonic() - self._last_flush >= self.flush_every_n_seconds:
      self.flush()

  def add_parts(self, start_step: int, part_ends: Sequence[int], rows: Sequence[List[float]],
                seconds_per_step: float, last_ends: bool,
                wall_time: float) -> List[Tuple[int, List[float]]]:
    """Adds a loop's parts to their intervals, and writes the point of each interval they end.

    Args:
      start_step: The global step before the first part.
      part_ends: The global step each part ends at. Every part but the last
        ends an interval.
      rows: Each part's sums, in `track`'s order, as lists the manager may keep.
      seconds_per_step: The host's time of the loop's call, per step.
      last_ends: Whether the last part ends its interval too.
      wall_time: When the host got the sums (time.time()): the points' wall time.

    Returns:
      The global step and the values of each point written, of
      `train_tags`: the interval's means, then its throughput.
    """
    points = []
    sums, steps, seconds = self._sums, self._steps, self._seconds
    part_start, last = start_step, len(part_ends) - 1
    # Hot: ten points per call of a throughput run (BUILD.md, "a point").
    for index, (part_end, row) in enumerate(zip(part_ends, rows)):
      part_steps = part_end - part_start
      # Most parts are whole intervals: their sums are the interval's.
      sums = [*map(operator.add, sums, row)] if steps else row
      steps += part_steps
      seconds += seconds_per_step * part_steps
      if index < last or last_ends:
        rate = steps / seconds if seconds > 0 else float('nan')
        values = [total / steps for total in sums]
        values += rate, rate * self.batch_size
        self._write_point('train', part_end, wall_time, values)
        points.append((part_end, values))
        steps = seconds = 0
      part_start = part_end
    self._sums = sums if steps else [0.0] * len(sums)
    self._steps, self._seconds = steps, seconds
    return points

  def evaluated(self, step: int, means: Dict[str, float], wall_time: float) -> None:
    """Writes an evaluation's means at global step `step` as a val point (see `add_parts`)."""
    self._write_point('val', step, wall_time, [means[name] for name in self._eval_scalars])

  def _write_point(self, split: str, step: int, wall_time: float, values: List[float]) -> None:
    """Writes a point, of its tags past their high-water marks (if any), as one event."""
    file = self._files[split]
    if file is None:
      return
    encoder, x = self._encoders[split], self.x(step)
    if x > self._highest_mark[split]:  # Past every tag's mark: the common case, one comparison.
      file.write(encoder.event(x, wall_time, values))
      return
    on_disk = self._on_disk[split]
    emit = [x > on_disk.get(tag, -1) for tag in encoder.tags]
    if any(emit):
      file.write(encoder.event(x, wall_time, values, emit))

  def settle(self) -> None:
    """Before a checkpoint: saves the interval so far in its variables."""
    for variable, total in zip(self._saved_sums.values(), self._sums):
      variable.assign(total)
    self._saved_steps.assign(self._steps)
    self._saved_seconds.assign(self._seconds)

  def restored(self) -> None:
    """After a checkpoint is restored: the interval so far is the saved one."""
    self._sums = [float(variable.numpy()) for variable in self._saved_sums.values()]
    self._steps = float(self._saved_steps.numpy())
    self._seconds = float(self._saved_seconds.numpy())

  def log_train(self, step: int, values: Sequence[float]) -> None:
    """Logs the progress line of an interval (if `log_progress`), given its point's values."""
    if self.log_progress:
      logging.info('%s', progress.line(step, self.total_steps, self.steps_per_epoch,
                                       dict(zip(self.train_tags, values))))

  def log_val(self, step: int, values: Dict[str, float]) -> None:
    """Logs an evaluation's results (if `log_progress`)."""
    if self.log_progress:
      logging.info('validation at step %d: %s', step, progress.scalars_text(values))

  def write_text(self, tag: str, markdown: str, step: int) -> None:
    """Writes a text summary (e.g. the operative gin config) to train/, once per model_dir."""
    if tag in self._on_disk['train']:
      return
    with self.as_default('train', step):
      tf.summary.text(tag, markdown)
    self._on_disk['train'][tag] = self.x(step)

  @contextlib.contextmanager
  def as_default(self, split: str, step: int) -> Iterator[None]:
    """Sends any `tf.summary` call inside the block to `split`'s event file, at `step`."""
    file = self._files[split]
    if file is None:
      with tf.summary.create_noop_writer().as_default(step=self.x(step)):
        yield
    else:
      with file.summaries_at(self.x(step)):
        yield

  def flush(self) -> None:
    """Pushes everything written so far to the event files."""
    for file in self._files.values():
      if file is not None:
        file.flush()
    self._last_flush = time.monotonic()
