"""TensorBoard scalars for train/ and val/: interval means, one point per interval."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import gin
import keras
from absl import logging

from gin_trainer.errors import ConfigError
from gin_trainer.intervals import Interval
from gin_trainer.summaries import progress, run_summary, tags
from gin_trainer.summaries.interval_sums import IntervalSums
from gin_trainer.summaries.split_writer import SplitWriter

X_AXES = ('auto', 'epoch', 'step')
EVAL_RUN_PREFIX = 'eval_'  # + split: the run (directory) of a checkpoint's evaluation.

# One part of a loop: the global step it ends at, and each train scalar's sum over its steps.
Part = Tuple[int, Sequence[float]]


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

  - `throughput/steps_per_second` and `throughput/examples_per_second`
    (`tags.py`: TensorBoard shows them after the loss and metrics): training
    throughput over the interval, timed on the host around its loops' calls
    (the train steps, and an evaluation that ends a loop; not checkpointing,
    writing points, hooks or tracing; the first interval includes XLA's
    compilation); a call that runs several intervals shares its time among
    them by steps;
  - `throughput/waiting_for_input`, over `tf.data` (not data on the
    device): the share of the interval's time its steps waited for their
    batch, timed in the loop around each `get_next`. The console says once
    when it is `progress.INPUT_BOUND` or more;
  - `schedule/learning_rate`: the mean rate the optimizer applied over the
    interval; `precision/loss_scale`, under float16: the mean loss scale;
  - with `gradient_stats`, `gradients/global_norm` and one
    `gradients/variance/<variable>` per trainable variable (means of the
    per-step values), computed on device by the train step.

  The val scalars are those of one evaluation, written at the step the
  evaluation ran. Each point also makes one console line (`log_progress`).

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
    log_progress: Log one console line per point (step, epoch, scalars,
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
    self.flush_every_n_seconds = flush_every_n_seconds
    self.model_dir = model_dir
    self.steps_per_epoch = steps_per_epoch
    self.total_steps = total_steps
    self.batch_size = batch_size
    self.interval_steps = self.interval.in_steps(steps_per_epoch)
    self._epoch_axis = False
    self.train_sums: Optional[IntervalSums] = None  # Once the train step's scalars are known.
    self.eval_scalars: List[str] = []
    self.train_metrics: Dict[str, keras.metrics.Metric] = {}
    # Per split; None where this process writes nothing (not a cluster's chief).
    self._writers: Dict[str, Optional[SplitWriter]] = {}
    self._last_flush = time.monotonic()
    self._steady_seconds_per_step: Optional[float] = None  # For the ETA.
    self._said_input_bound = False
    self.last_points: run_summary.LastPoints = {}  # This process's, per split.

  def choose_x_axis(self, schedule_in_epochs: bool) -> None:
    """Settles the x-axis, once the Trainer knows its schedule.

    Args:
      schedule_in_epochs: Whether training lasts whole epochs and evaluation
        (if periodic) runs every few epochs.

    Raises:
      ConfigError: `x_axis='epoch'` was asked for but is not possible.
    """
    possible = schedule_in_epochs and self.interval.unit == 'epochs'
    if self.x_axis == 'epoch' and not possible:
      raise ConfigError(
          "SummaryManager.x_axis='epoch' needs every point on an epoch boundary: "
          'give SummaryManager.every_n_epochs, Trainer.eval_every_n_epochs and '
          "Trainer.train_epochs, or use x_axis='step'")
    self._epoch_axis = possible and self.x_axis != 'step'

  def x(self, step: int) -> int:
    """The x-axis value of global step `step`."""
    return step // self.steps_per_epoch if self._epoch_axis else step

  def track(self, train_scalars: Sequence[str], eval_scalars: Sequence[str],
            train_metrics: Optional[Mapping[str, keras.metrics.Metric]] = None) -> None:
    """Learns the scalars of the train and eval steps (creates the interval's variables).

    Args:
      train_scalars: The train step's scalars.
      eval_scalars: The evaluation's scalars.
      train_metrics: Keras metrics the train step updates: each point gets
        their results, then resets them (loops end at every point).
    """
    self.train_sums = IntervalSums(train_scalars)
    self.eval_scalars = list(eval_scalars)
    self.train_metrics = dict(train_metrics or {})

  def checkpoint_items(self) -> Dict[str, Any]:
    """The interval so far: a run resumed mid-interval writes the same means."""
    items = {'summary_interval': dict(self.train_sums.checkpoint_items())}
    if self.train_metrics:
      items['train_metrics'] = {name: list(metric.variables)
                                for name, metric in self.train_metrics.items()}
    return items

  def open(self, splits: Sequence[str], write: bool = True, in_order: bool = True) -> None:
    """Creates the event files of `splits` (when training starts, so a finished run adds none).

    Args:
      splits: 'train', and 'val' if the run evaluates.
      write: False for a worker that is not the chief of a cluster: it
        writes nothing.
      in_order: Whether points come in step order (`SplitWriter`).
    """
    for split in splits:
      if split not in self._writers:
        self._writers[split] = (SplitWriter(os.path.join(self.model_dir, split), in_order)
                                if write else None)

  def add_train(self, parts: Sequence[Part], seconds_per_step: float, start_step: int,
                steady: bool = True) -> Dict[str, float]:
    """Adds a loop's parts to their intervals; writes and logs each interval they end.

    A part ends its interval where it ends on a summary boundary or at the
    end of training.

    Args:
      parts: The loop's parts, in order.
      seconds_per_step: The host's time of the loop's call, per step.
      start_step: The global step before the first part.
      steady: Whether the call ran at the run's steady speed (it did not
        compile anything); only such calls set the console's ETA.

    Returns:
      The values of the last point written (empty if none was).
    """
    values: Dict[str, float] = {}
    if steady:
      self._steady_seconds_per_step = seconds_per_step
    for end, sums in parts:
      steps = end - start_step
      self.train_sums.add(sums, steps, seconds_per_step * steps)
      start_step = end
      if end % self.interval_steps == 0 or end == self.total_steps:
        values = self.train_sums.end()
        values[tags.EXAMPLES_PER_SECOND] = values[tags.STEPS_PER_SECOND] * self.batch_size
        if tags.WAITING_FOR_INPUT in values:  # Seconds per step: their share of the time.
          values[tags.WAITING_FOR_INPUT] *= values[tags.STEPS_PER_SECOND]
          self._advise_if_input_bound(end, values[tags.WAITING_FOR_INPUT], steady)
        values.update(self._end_train_metrics())
        self._write('train', end, values)
        if self.log_progress:
          logging.info('%s', progress.line(end, self.total_steps, self.steps_per_epoch, values,
                                           self._steady_seconds_per_step))
    return values

  def _advise_if_input_bound(self, step: int, waiting: float, steady: bool) -> None:
    """Says once, at a steady interval, that the input pipeline sets the run's pace."""
    if steady and waiting >= progress.INPUT_BOUND and not self._said_input_bound:
      self._said_input_bound = True
      logging.info('%s', progress.input_bound_line(step, waiting))

  def add_val(self, step: int, means: Dict[str, float]) -> None:
    """Writes and logs an evaluation's means at global step `step`."""
    self._write('val', step, means)
    if self.log_progress:
      logging.info('validation at step %d: %s', step, progress.scalars_text(means))

  def add_evaluation(self, split: str, step: int, means: Dict[str, float],
                     write: bool = True) -> None:
    """Writes and logs an evaluation of data split `split` to `eval_<split>/`, at `step`.

    For evaluations of a checkpoint (the evaluate command, `Trainer.test_split`),
    kept apart from the run's periodic val/ points.
    """
    run = EVAL_RUN_PREFIX + split
    self.open([run], write=write, in_order=False)
    self._write(run, step, means)
    if self.log_progress:
      logging.info('evaluation on %s at step %d: %s', split, step, progress.scalars_text(means))

  def _write(self, split: str, step: int, values: Dict[str, float]) -> None:
    self.last_points[split] = (step, dict(values))
    writer = self._writers[split]
    if writer is not None:
      writer.scalars(self.x(step), values)

  def hook_is_new(self, split: str, step: int, known_tags: Sequence[str]) -> bool:
    """Whether a hook's summaries at `step` are new: past every mark of `split`'s other tags.

    A resumed run reruns the evaluations after its checkpoint; their hook's
    images, already on disk, are not written again.
    """
    writer = self._writers.get(split)
    if writer is None:
      return False
    others = [tag for tag in writer.marks if tag not in known_tags]
    return all(writer.is_new(self.x(step), tag) for tag in others)

  def on_disk(self, split: str, tag: str) -> bool:
    """Whether `split`'s directory held `tag` when this run opened it (True if it writes nothing)."""
    writer = self._writers[split]
    return writer is None or tag in writer.marks

  @contextlib.contextmanager
  def as_default(self, split: str, step: int) -> Iterator[None]:
    """Sends any `tf.summary` call inside the block to `split`'s event file, at `step`."""
    writer = self._writers[split]
    if writer is None:
      yield
    else:
      with writer.as_default(self.x(step)):
        yield

  def save(self) -> None:
    """Before a checkpoint: keeps the interval so far in its variables."""
    self.train_sums.save()

  def restored(self, step: int) -> None:
    """After a checkpoint of global step `step` is restored: the interval so far is the saved one.

    If the summary settings changed since (other scalars, another interval),
    the interval starts at `step` instead, and says so.
    """
    in_interval = step % self.interval_steps
    if self.train_sums.restore(in_interval):
      return
    for metric in self.train_metrics.values():  # Their state restarts with the interval.
      metric.reset_state()
    if in_interval:
      logging.info('The summary settings changed since the checkpoint: the interval in progress '
                   'restarts at step %d (its point averages the steps from there).', step)

  def _end_train_metrics(self) -> Dict[str, float]:
    """The Keras train metrics' results over the interval; they start again."""
    results = {name: float(metric.result()) for name, metric in self.train_metrics.items()}
    for metric in self.train_metrics.values():
      metric.reset_state()
    return results

  def maybe_flush(self) -> None:
    """Flushes if `flush_every_n_seconds` have passed since the last flush."""
    if time.monotonic() - self._last_flush >= self.flush_every_n_seconds:
      self.flush()

  def flush(self) -> None:
    """Pushes everything written so far to the event files."""
    for writer in self._writers.values():
      if writer is not None:
        writer.flush()
    self._last_flush = time.monotonic()
