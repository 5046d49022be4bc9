"""The one `tf.function` call each loop makes: train steps, and whatever is due."""

from __future__ import annotations

import gc
import math
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import tensorflow as tf

from trainer import loops
from trainer.distribution import Replicas
from trainer.errors import ConfigError
from trainer.flat_call import flat_call
from trainer.summary_manager import SummaryManager

Scalars = Dict[str, tf.Tensor]


class Outcome(NamedTuple):
  """What one iteration returns.

  Attributes:
    bad_step: The step at which a watched scalar was first non-finite, or -1
      (then only the intervals that ended before it are filled in).
    non_finite: With a bad step, the first watched scalar whose sum over its
      interval in the loop is non-finite (as the step's value was), and that
      sum; else None.
    train_points: The global step and values of each interval that ended
      (the values of `SummaryManager.train_tags`).
    val_values: The evaluation's means (empty if it did not evaluate).
    host_flags: The call's `host_flags`, raised (1.0) where any worker raised them.
    seconds: The host time of the call.
  """
  bad_step: int
  non_finite: Optional[Tuple[str, float]]
  train_points: List[Tuple[int, List[float]]]
  val_values: Dict[str, float]
  host_flags: List[float]
  seconds: float


class Iteration:
  """Runs up to K train steps, and the evaluation if due, in one call.

  Each call is one call of a concrete `tf.function`, XLA-compiled where
  possible: the train steps, the global step and, if due, the evaluation.
  Over segmented data (`DeviceData`), the loop runs across summary interval
  boundaries and returns each interval's sums; the host adds them to the
  intervals', and the SummaryManager writes the points of those that ended
  (and of the evaluation) once the call is over. Whether to
  evaluate chooses the function: each is traced before it is timed and
  called directly, the same on every worker of a cluster (as their
  collectives must be). If a watched scalar turns non-finite, the loop
  stops there; the intervals that ended before it are returned.

  Args:
    train_step: batch -> scalars, the Trainer's step (with the learning rate).
    train_data: Training batches (`DeviceData`, `PipelineData` or `DistributedData`).
    eval_step: batch -> scalars; None without evaluation.
    val_data: Evaluation batches; None without evaluation.
    summaries: Accumulates and writes the scalars.
    global_step: Set to the step reached.
    check_finite: Train scalars that must stay finite.
    jit_compile: Compile the loops with XLA where possible.
    replicas: Where the steps run (one device, or a strategy's replicas).

  Attributes:
    spans_intervals: Whether a loop may run across interval boundaries.
    max_intervals: The most interval boundaries a loop may cross or end at
      (each is a row of its result).

  Raises:
    ConfigError: `check_finite` names a scalar the train step does not return.
    DataError: The model cannot take the data's batches.
  """

  def __init__(self, train_step: Callable[[Any], Scalars], train_data: Any,
               eval_step: Optional[Callable[[Any], Scalars]], val_data: Any,
               summaries: SummaryManager, global_step: tf.Variable,
               check_finite: Sequence[str], jit_compile: bool, replicas: Replicas):
    self.train_scalars = list(loops.scalar_specs(replicas.first_replica(train_step),
                                                 train_data.element_spec, 'train_step'))
    unknown = sorted(set(check_finite) - set(self.train_scalars))
    if unknown:
      raise ConfigError(f'Trainer.check_finite names {unknown}, which the train step does not '
                       f'return; it returns {self.train_scalars}')
    self.eval_scalars = []
    self._eval_loop = None
    if val_data is not None:
      self.eval_scalars = list(loops.scalar_specs(replicas.first_replica(eval_step),
                                                  val_data.element_spec, 'eval_step'))
      self._eval_loop = loops.make_eval_loop(replicas.total(loops.weighted_by_size(eval_step)),
                                             val_data, self.eval_scalars)
    summaries.track(self.train_scalars, self.eval_scalars)
    self.spans_intervals = train_data.segmented
    self.max_intervals = _MAX_INTERVALS
    self._interval = summaries.interval_steps
    # Parts of a loop: one per interval it ends, and the rest of one.
    self._max_parts = self.max_intervals + 1 if self.spans_intervals else 1
    self._train_loop = loops.make_train_loop(
        replicas.mean(train_step), train_data, self.train_scalars, check_finite, jit_compile,
        self._interval if self.spans_intervals else None, self._max_parts)
    self._summaries = summaries
    self._global_step = global_step
    self._replicas = replicas
    self._watch = tuple(check_finite)
    self._jit_compile = jit_compile and all(data.compilable for data in (train_data, val_data)
                                            if data is not None)
    self._loops: Dict[bool, Callable[..., tf.Tensor]] = {}

  def __call__(self, start_step: int, num_steps: int, interval_ends: bool, evaluate: bool,
               host_flags: Sequence[bool]) -> Outcome:
    """Runs one iteration.

    Args:
      start_step: The global step before the iteration.
      num_steps: Train steps to run: without `spans_intervals`, none past
        the next interval boundary.
      interval_ends: The summary interval ends with the last step (at a
        boundary, or at the end of training).
      evaluate: Evaluate (and write val/) after the last step.
      host_flags: Decisions of this process for after the call (e.g. stop,
        save), combined over the workers of a cluster (see `Outcome`).

    Returns:
      The outcome.
    """
    summaries, end = self._summaries, start_step + num_steps
    # One input vector and one output: each tensor costs the call microseconds.
    ints = tf.constant([start_step, num_steps, *host_flags], tf.int64)
    call = self._loop(evaluate, len(ints))  # Traced (and compiled) the first time.
    began = time.perf_counter()
    packed = call(ints).numpy()  # Waits for the call to finish.
    # The call's evaluation too: a clock read between the two, in the graph,
    # cost 100 us per call (tf.timestamp refuses to run under op determinism).
    seconds = time.perf_counter() - began
    wall_time = time.time()
    # packed: bad step, a row of sums per part (max_parts rows), val means, flags.
    width, bad_step = len(self.train_scalars), int(packed[0])
    val_at = 1 + self._max_parts * width
    val_values = dict(zip(self.eval_scalars, packed[val_at:].tolist())) if evaluate else {}
    flags = packed[len(packed) - len(host_flags):].tolist()
    # The loop's parts end at the interval boundaries inside it, and at its end.
    interval = self._interval
    part_ends = [*range(start_step - start_step % interval + interval, end, interval), end]
    rows = packed[1:1 + len(part_ends) * width].reshape(-1, width).tolist()  # Only those used.
    seconds_per_step = seconds / (bad_step - start_step if bad_step >= 0 else num_steps)
    if bad_step >= 0:  # The parts before the bad step's end their intervals.
      bad_part = next(index for index, part_end in enumerate(part_ends) if part_end >= bad_step)
      train_points = summaries.add_parts(start_step, part_ends[:bad_part], rows[:bad_part],
                                         seconds_per_step, True, wall_time)
      sums = dict(zip(self.train_scalars, rows[bad_part]))
      non_finite = next((name, sums[name]) for name in self._watch
                        if not math.isfinite(sums[name]))
      return Outcome(bad_step, non_finite, train_points, {}, flags, seconds)
    train_points = summaries.add_parts(start_step, part_ends, rows, seconds_per_step,
                                       interval_ends, wall_time)
    if evaluate:
      summaries.evaluated(end, val_values, wall_time)
    return Outcome(bad_step, None, train_points, val_values, flags, seconds)

  def _loop(self, evaluate: bool, width: int) -> Callable[..., tf.Tensor]:
    """The loop's function, compiled with XLA where possible (each variant at its first call).

    It takes [start step, steps, *host flags] and returns one float64
    vector: the bad step, a row of sums per part (`max_parts` rows), the
    val means, the flags any worker raised.
    """
    if evaluate not in self._loops:

      def run(ints):
        start_step, num_steps = ints[0], ints[1]
        part_sums, bad_step = self._train_loop(start_step, num_steps)
        self._global_step.assign(start_step + num_steps)
        parts = [tf.cast(bad_step, tf.float64)[tf.newaxis],
                 tf.reshape(tf.cast(part_sums, tf.float64), [-1])]
        if evaluate:
          val_means = self._eval_loop()
          parts.append(tf.stack([tf.cast(val_means[name], tf.float64)
                                 for name in self.eval_scalars]))
        flags = self._replicas.any_worker(tf.cast(ints[2:], tf.float32))
        return tf.concat([*parts, tf.cast(flags, tf.float64)], 0)

      spec = tf.TensorSpec([width], tf.int64)
      function = loops.compiled(run, self._jit_compile, 'loop', spec)
      self._loops[evaluate] = flat_call(function.get_concrete_function(spec))
      # Tracing leaves ~300,000 Python objects; a full collection scanning
      # them paused the loop 160 ms. Frozen, the collector skips them (the
      # Trainer unfreezes them when training ends).
      gc.freeze()
    return self._loops[evaluate]


_MAX_INTERVALS = 100  # Bounds the intervals a loop ends, so the rows of its result.

