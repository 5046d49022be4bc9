"""The contenders of the benchmark: gin-trainer, its peers, the floor, the data path alone.

gin-trainer is driven only through main.py's public path (gin files and
bindings, then `run_experiment()`) and timed from the event files it
writes, so this keeps working while the Trainer's internals change. Only
`input_alone` reads internals, on purpose: it measures the Trainer's data
path, whatever that is.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import math
import os
import tempfile
from typing import Any, Callable, List, Optional, Sequence, Tuple

import gin
import tensorflow as tf

from gin_trainer import models  # noqa: F401  (registers the models with gin, as the command does)
from gin_trainer.trainer import Trainer
from benchmarks import peers
from benchmarks import workloads as wl
from benchmarks.workloads import Workload
from gin_trainer.config import gin_files
from gin_trainer.loop.xla import Xla
from gin_trainer import experiment
from gin_trainer.summaries import tags

TRAINER, PEER, FLOOR, INPUT = 'trainer', 'peer', 'floor', 'input'
# The fewest loops of K steps in gin-trainer's window, so that a figure is
# not one call's: at 10,000 steps a loop, 499 regression epochs without XLA
# were a window of the run's third call alone.
MIN_WINDOW_LOOPS = 2


@dataclasses.dataclass(frozen=True)
class Contender:
  """One way of training a workload.

  Attributes:
    key: The name given to --contenders.
    label: The name in the tables.
    role: TRAINER, PEER (what gin-trainer must beat), FLOOR or INPUT.
    measure: `measure(workload, epochs)` -> steady-state steps per second
      (batches per second for INPUT).
    steps_per_call: Steps per host call, for the table; None: the
      Trainer's own choice.
    throughput_only: Only for the workloads without evaluation.
    timed_next_to: The key of the contender a target compares this one
      with: each repeat times the two back to back (see
      `schedule.repeat_groups`).
  """

  key: str
  label: str
  role: str
  measure: Callable[[Workload, int], float]
  steps_per_call: Callable[[Workload], Optional[int]]
  throughput_only: bool = False
  timed_next_to: Optional[str] = None

  def applies_to(self, workload: Workload) -> bool:
    return not (self.throughput_only and workload.evaluate)


def trainer_bindings(workload: Workload, model_dir: str, epochs: int,
                     summary_steps: Optional[int]) -> List[str]:
  """The gin bindings that make main.py train `workload` for `epochs` epochs.

  Args:
    workload: The workload.
    model_dir: A fresh directory.
    epochs: Epochs to train.
    summary_steps: Train scalars every this many steps, when the workload
      does not evaluate.

  Returns:
    Bindings to apply after the workload's .gin file. Event steps are
    global steps (`x_axis='step'`), which changes what TensorBoard's axis
    shows, not the work done.
  """
  bindings = [f'Trainer.model_dir = {model_dir!r}', f'Trainer.batch_size = {workload.batch_size}',
              'Trainer.train_steps = None', f'Trainer.train_epochs = {epochs}',
              'Trainer.eval_every_n_steps = None', "SummaryManager.x_axis = 'step'",
              'SummaryManager.log_progress = False']
  if workload.evaluate:
    return bindings + ['Trainer.eval_every_n_epochs = 1', 'SummaryManager.every_n_steps = None',
                       'SummaryManager.every_n_epochs = 1']
  return bindings + ['Trainer.eval_every_n_epochs = None', 'Trainer.val_split = None',
                     'SummaryManager.every_n_epochs = None',
                     f'SummaryManager.every_n_steps = {summary_steps}']


@dataclasses.dataclass(frozen=True)
class TrainPoint:
  """One train point a run wrote: its step, wall time and throughput."""

  step: int
  wall_time: float
  steps_per_second: float


def read_train_points(model_dir: str) -> List[TrainPoint]:
  """Every train point in the run's event files, with its wall time, in step order."""
  points = []
  for path in glob.glob(os.path.join(model_dir, 'train', 'events.out.tfevents.*')):
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      for value in event.summary.value:
        if value.tag == tags.STEPS_PER_SECOND:
          points.append(TrainPoint(event.step, event.wall_time,
                                   float(tf.make_ndarray(value.tensor))))
  return sorted(points, key=lambda point: point.step)


def steady_window(points: Sequence[TrainPoint], start: int) -> Tuple[int, float]:
  """Steps and seconds between two loop ends: the first at or after `start`, the last before the end.

  The points of one loop's call share its throughput (the call's time is
  shared among its steps), and are written when the call returns, so the
  last point before a point of another throughput marks the end of a loop
  (here loops end on interval boundaries, so no interval mixes two calls).
  The window runs from the first such end at or after step `start` (or, in
  a short run, the last but one) to the last one before the final step.
  Every step in between is whole (training, summaries, evaluation).
  Building, tracing, compiling, the Trainer's first loops (while it learns
  its speed) and the end (the final call, which may be short) fall outside it.

  Returns:
    The window's steps and seconds; (0, 0.0) when there are not two loop ends.
  """
  loop_ends = [point for point, after in zip(points, points[1:])
               if after.steps_per_second != point.steps_per_second]
  if len(loop_ends) < 2:
    return 0, 0.0
  later = [point for point in loop_ends if point.step >= start]
  first, last = later[0] if len(later) >= 2 else loop_ends[-2], loop_ends[-1]
  return last.step - first.step, last.wall_time - first.wall_time


def parse_config(workload: Workload, model_dir: str, epochs: int, summary_steps: Optional[int],
                 bindings: Sequence[str]) -> None:
  """Replaces gin's config with the workload's .gin file and bindings, as main.py applies them."""
  gin.clear_config()
  gin_files.parse([workload.gin_file],
               [*trainer_bindings(workload, model_dir, epochs, summary_steps), *bindings])


def gin_trainer(workload: Workload, epochs: int, bindings: Sequence[str] = (),
                summaries_off: bool = False) -> float:
  """Steady-state steps per second of main.py's path, from the run's own event files.

  Trains 1 + `epochs` epochs as main.py does (gin files, bindings,
  `run_experiment()`) in a fresh model_dir, then times the window of
  `steady_window`. The window holds at least `MIN_WINDOW_LOOPS` loops of
  the workload's K steps (more epochs are trained when `epochs` are too
  few), and, like the floor's, it lasts at least `peers.MIN_SECONDS`: when
  it is shorter, the run is done again, with enough more epochs.

  Args:
    workload: The workload.
    epochs: Epochs after the first, at least.
    bindings: More gin bindings, applied last (the contender's and
      --gin_param).
    summaries_off: Throughput setting only: a summary interval of a quarter
      of the run (rounded up to whole epochs) instead of `summary_steps`,
      so that the window (from half the run to three quarters) holds no
      train scalars but those that end it, as every window does, and the
      loop is the one of no summaries at all (no parts inside epochs).

  Returns:
    The rate, or NaN when the run has no window.
  """
  # The window is about two thirds of the run (a quarter without summaries).
  share = 0.25 if summaries_off else 2 / 3
  loops_steps = (MIN_WINDOW_LOOPS + 1) * workload.steps_per_call / share
  epochs = max(epochs, math.ceil(loops_steps / wl.steps_per_epoch(workload)) - 1)
  steps, seconds = _trainer_window(workload, epochs, bindings, summaries_off)
  if 0 < seconds < peers.MIN_SECONDS:
    # A margin: the window is about two thirds of the run, and the speed varies.
    epochs = math.ceil((1 + epochs) * 1.25 * peers.MIN_SECONDS / seconds)
    steps, seconds = _trainer_window(workload, epochs, bindings, summaries_off)
  return steps / seconds if seconds > 0 else float('nan')


def _trainer_window(workload: Workload, epochs: int, bindings: Sequence[str],
                    summaries_off: bool) -> Tuple[int, float]:
  """Trains as `gin_trainer` does once; the steps and seconds of its window."""
  steps_per_epoch = wl.steps_per_epoch(workload)
  total = (1 + epochs) * steps_per_epoch
  # Off: whole epochs, so the loop has no parts inside epochs, as with no summaries at all.
  quarter_epochs = -(-(1 + epochs) // 4)
  summary_steps = quarter_epochs * steps_per_epoch if summaries_off else workload.summary_steps
  with tempfile.TemporaryDirectory() as model_dir:
    parse_config(workload, model_dir, 1 + epochs, summary_steps, bindings)
    experiment.run_experiment()
    gin.clear_config()
    return steady_window(read_train_points(model_dir), total // 3)


def _batch_sum(batch: Any) -> tf.Tensor:
  """Reads every value of a batch: the sum of them all."""
  return tf.add_n([tf.reduce_sum(tf.cast(tensor, tf.float32)) for tensor in tf.nest.flatten(batch)])


def input_alone(workload: Workload, epochs: int, bindings: Sequence[str] = ()) -> float:
  """Batches per second of the Trainer's data path alone, with no model.

  The one contender that reads the Trainer's internals, as they stand: a
  Trainer built from gin as main.py builds it, and its training data
  object (`Trainer.train_data`: arrays on the device, or the `tf.data`
  pipeline), read through its `start(step)` and `next(state, step)` in a
  `tf.function` while-loop of one epoch per call (one segment: an epoch),
  compiled with XLA when the Trainer compiles its whole loop (`Trainer.xla`).
  If those internals change, change this function.
  """
  with tempfile.TemporaryDirectory() as model_dir:
    parse_config(workload, model_dir, 1 + epochs, workload.summary_steps, bindings)
    run = Trainer()
    gin.clear_config()
  data, steps_per_epoch = run.train_data, wl.steps_per_epoch(workload)

  @tf.function(jit_compile=run.xla is Xla.LOOP)
  def read(start_step):
    state = data.start(start_step)
    total = tf.constant(0.0)
    i = tf.constant(0, tf.int64)
    while i < steps_per_epoch:
      batch = data.next(state, start_step + i)
      total += _batch_sum(batch)
      i += 1
    return total

  return peers.time_loop(lambda first_step: read(tf.constant(first_step, tf.int64)),
                         steps_per_epoch, epochs * steps_per_epoch)


def _fit(steps_per_execution: Optional[int], jit_compile: bool) -> Callable[[Workload, int], float]:
  """Keras fit with `steps_per_execution` (None: one epoch per execution)."""

  def measure(workload: Workload, epochs: int) -> float:
    return peers.keras_fit(workload, epochs, steps_per_execution or wl.steps_per_epoch(workload),
                           jit_compile)

  return measure


def all_contenders(extra_bindings: Sequence[str] = ()) -> List[Contender]:
  """Every contender, in table order.

  Args:
    extra_bindings: Gin bindings added to every gin-trainer run and to the
      Trainer built for its data path (--gin_param).
  """
  # XLA on, as on a long run (regression.gin turns it off for its short one).
  extra = ['Trainer.jit_compile = True', *extra_bindings]
  own = lambda workload: None
  one = lambda workload: 1
  epoch = wl.steps_per_epoch
  k = lambda workload: workload.steps_per_call
  return [
      Contender('gin_trainer', 'gin-trainer (main.py, XLA)', TRAINER,
                functools.partial(gin_trainer, bindings=extra), own),
      Contender('gin_trainer_noxla', 'gin-trainer, jit_compile=False', TRAINER,
                functools.partial(gin_trainer, bindings=[*extra, 'Trainer.jit_compile = False']),
                own),
      Contender('gin_trainer_nosummaries', 'gin-trainer, no train scalars in the timed quarter',
                TRAINER,
                functools.partial(gin_trainer, bindings=extra, summaries_off=True), own,
                throughput_only=True, timed_next_to='gin_trainer'),
      Contender('fit', 'Keras fit + TensorBoard', PEER, _fit(1, False), one),
      Contender('fit_xla', 'Keras fit + TensorBoard, XLA', PEER, _fit(1, True), one),
      Contender('fit_tuned', 'Keras fit + TensorBoard, tuned', PEER, _fit(None, False), epoch),
      Contender('fit_tuned_xla', 'Keras fit + TensorBoard, tuned, XLA', PEER, _fit(None, True),
                epoch),
      Contender('tutorial', "the tutorial's loop", PEER, peers.tutorial_loop, one),
      Contender('floor', 'floor', FLOOR, functools.partial(peers.floor, jit_compile=False), k,
                timed_next_to='gin_trainer_noxla'),
      Contender('floor_xla', 'floor, XLA', FLOOR, functools.partial(peers.floor, jit_compile=True),
                k, timed_next_to='gin_trainer'),
      Contender('input', "the Trainer's data path alone, no model (batches/s)", INPUT,
                functools.partial(input_alone, bindings=extra), epoch),
  ]
