"""The `tf.function` calls of a loop: train steps, then the evaluation if due."""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from gin_trainer.data.contract import Batches
from gin_trainer.distribute.replicas import Replicas
from gin_trainer.errors import ConfigError
from gin_trainer.loop import graph_loops
from gin_trainer.loop.xla import Xla, compiled

Scalars = Dict[str, tf.Tensor]

# Bounds the summary intervals one loop may end, so the rows of its result.
MAX_INTERVALS = 100


class LoopResult(NamedTuple):
  """What one call of the loop returns, on the host.

  Attributes:
    parts: `(end step, sums)` of each part of the loop, in order: a part
      ends at a summary boundary inside the loop, or at the loop's end;
      `sums` holds each train scalar's sum over the part's steps (in
      `CompiledLoop.train_scalars` order). After a non-finite step, only
      the parts before it, each ending an interval.
    non_finite: None, or the step at which a watched scalar was first NaN
      or infinite, the first such scalar and its sum over the part.
    val_means: The evaluation's means (empty if it did not evaluate).
    stop: Whether any worker of the cluster asked to stop after this loop.
    save: Whether any worker found a checkpoint due after this loop.
    steps: The train steps the call ran (up to a non-finite one).
    seconds: The host's time of the train steps' call (the evaluation's apart).
    first_call: Whether this was the train function's first call, whose
      time includes compiling it.
  """
  parts: List[Tuple[int, List[float]]]
  non_finite: Optional[Tuple[int, str, float]]
  val_means: Dict[str, float]
  stop: bool
  save: bool
  steps: int
  seconds: float
  first_call: bool


class CompiledLoop:
  """Runs up to K train steps in one `tf.function` call, then the evaluation if due in another.

  The train function (XLA-compiled where `xla` says) runs the steps and
  sets the global step. Over segmented data (`Batches.segmented`) the loop
  may run across summary interval boundaries and returns each part's sums.
  The evaluation is a function of its own, so each step is compiled once
  per run whichever loops evaluate. Building the loop traces each step
  once, which creates every variable it uses; the loops call those traces.
  Every worker of a cluster calls the same functions in the same order, as
  their collectives must.

  Args:
    train_step: batch -> scalars, the Trainer's step (with the learning rate).
    train_data: Training batches.
    eval_step: batch -> scalars; None without evaluation.
    val_data: Evaluation batches; None without evaluation.
    summary_interval: The summary interval in steps.
    global_step: Set to the step reached.
    check_finite: Train scalars that must stay finite.
    xla: What XLA compiles (`xla.choose`).
    replicas: Where the steps run (one device, or a strategy's replicas).
    eval_metrics: Keras metrics the eval step updates: each evaluation
      resets them and returns their results beside its means.
    span_intervals: Let a loop over segmented data run across summary
      boundaries; False when the host acts at each (Keras metrics: it
      reads and resets the train copies).
    input_wait: Over streamed data, the name under which the loop sums the
      seconds each step waited for its batch, as one more train scalar;
      None: not timed (nor where op determinism forbids the clock).

  Attributes:
    train_scalars: The names of the scalars the train step returns, and
      `input_wait` if it times the input (seconds per step).
    eval_scalars: The names of the scalars the eval step returns.
    spans_intervals: Whether a loop may run across interval boundaries.

  Raises:
    ConfigError: `check_finite` names a scalar the train step does not return.
    DataError: The model cannot take the data's batches.
  """

  def __init__(self, train_step: Callable[[Any], Scalars], train_data: Batches,
               eval_step: Optional[Callable[[Any], Scalars]], val_data: Optional[Batches],
               summary_interval: int, global_step: tf.Variable, check_finite: Sequence[str],
               xla: Xla, replicas: Replicas,
               eval_metrics: Optional[Mapping[str, keras.metrics.Metric]] = None,
               span_intervals: bool = True, input_wait: Optional[str] = None):
    if not replicas.distributed:
      # Traced once here, for their scalars' names; the loops call these traces. (Under a
      # strategy, a nested tf.function may not hold the gradients' all-reduce.)
      train_step = tf.function(train_step)
      eval_step = tf.function(eval_step) if eval_step is not None else None
    self.train_scalars = list(graph_loops.scalar_specs(
        replicas.first_replica(train_step), train_data.element_spec, 'train_step'))
    unknown = sorted(set(check_finite) - set(self.train_scalars))
    if unknown:
      raise ConfigError(f'Trainer.check_finite names {unknown}, which the train step does not '
                        f'return; it returns {self.train_scalars}')
    if not (input_wait and train_data.streamed and graph_loops.clocks_allowed()):
      input_wait = None
    if input_wait:
      self.train_scalars.append(input_wait)
    self.eval_scalars: List[str] = []
    self._eval_step = eval_step
    self._eval_metrics = dict(eval_metrics or {})
    self._replicas = replicas
    self._val_data = val_data
    self._val_evaluation: Optional[Callable[[], Dict[str, float]]] = None
    self._val_scalars: List[str] = []
    if val_data is not None:
      self._val_scalars = self._eval_step_scalars(val_data)
      self.eval_scalars = [*self._val_scalars, *self._eval_metrics]
    self.spans_intervals = train_data.segmented and span_intervals
    self._interval = summary_interval
    # A loop's parts: one per interval it ends, and the rest of one.
    self._max_parts = MAX_INTERVALS + 1 if self.spans_intervals else 1
    self._train_loop = graph_loops.make_train_loop(
        replicas.mean(train_step), train_data, self.train_scalars, check_finite,
        compile_step=xla is Xla.STEP,
        interval=summary_interval if self.spans_intervals else None, max_parts=self._max_parts,
        input_wait=input_wait)
    self._global_step = global_step
    self._watch = tuple(check_finite)
    self._xla = xla
    self._function: Optional[Callable[..., Any]] = None

  def __call__(self, start_step: int, num_steps: int, evaluate: bool, stop: bool = False,
               save: bool = False) -> LoopResult:
    """Runs one loop.

    Args:
      start_step: The global step before the loop.
      num_steps: Train steps to run: without `spans_intervals`, none past
        the next summary boundary.
      evaluate: Evaluate after the last step.
      stop: This process asks to stop after the loop (a signal came).
      save: This process finds a checkpoint due after the loop. Workers of
        a cluster must stop and save together, so the call combines both
        flags over them (see `LoopResult`).

    Returns:
      The result.
    """
    first_call = self._function is None
    function = self.function()
    began = time.perf_counter()
    out = function(tf.constant(start_step, tf.int64), tf.constant(num_steps, tf.int64),
                   tf.constant([stop, save]))
    out = tf.nest.map_structure(lambda tensor: tensor.numpy(), out)  # Waits for the call.
    seconds = time.perf_counter() - began
    end, bad_step = start_step + num_steps, int(out['bad_step'])
    # The loop's parts end at the interval boundaries inside it, and at its end.
    first = start_step - start_step % self._interval + self._interval
    part_ends = [*range(first, end, self._interval), end] if self.spans_intervals else [end]
    parts = list(zip(part_ends, out['part_sums'].tolist()))
    non_finite, steps = None, num_steps
    if bad_step >= 0:  # The parts before the bad step's end their intervals.
      bad_part = next(index for index, part_end in enumerate(part_ends) if part_end >= bad_step)
      sums = dict(zip(self.train_scalars, parts[bad_part][1]))
      name = next(name for name in self._watch if not math.isfinite(sums[name]))
      non_finite, parts = (bad_step, name, sums[name]), parts[:bad_part]
      steps = bad_step - start_step
    val_means = self._evaluate_val() if evaluate else {}
    stop_any, save_any = out['host_flags'].tolist()
    return LoopResult(parts, non_finite, val_means, stop_any, save_any, steps, seconds,
                      first_call)

  def evaluation(self, data: Batches) -> Callable[[], Dict[str, float]]:
    """A whole evaluation of a split's batches, as one call returning its means."""
    return self._evaluation(data, self._eval_step_scalars(data))

  def _evaluation(self, data: Batches, names: List[str]) -> Callable[[], Dict[str, float]]:
    """`evaluation`, given the names of the eval step's scalars on `data`."""
    means = graph_loops.make_eval_loop(
        self._replicas.total(graph_loops.weighted_by_size(self._eval_step)), data, names)

    def means_and_metrics():
      for metric in self._eval_metrics.values():  # Each evaluation starts afresh.
        metric.reset_state()
      return {**means(), **{name: metric.result() for name, metric in self._eval_metrics.items()}}

    function = compiled(means_and_metrics, self._xla is Xla.LOOP and data.compilable,
                        'evaluation')
    return lambda: {name: float(value) for name, value in function().items()}

  def _eval_step_scalars(self, data: Batches) -> List[str]:
    """The names of the scalars the eval step returns on `data`'s batches."""
    return list(graph_loops.scalar_specs(
        self._replicas.first_replica(self._eval_step), data.element_spec, 'eval_step'))

  def _evaluate_val(self) -> Dict[str, float]:
    """Evaluates the val split (its function built at the first evaluation)."""
    if self._val_evaluation is None:
      self._val_evaluation = self._evaluation(self._val_data, self._val_scalars)
    return self._val_evaluation()

  def function(self) -> Callable[..., Any]:
    """The train loop's `tf.function` (built at its first use).

    It takes the start step, the number of steps and the host's flags
    (stop, save), and returns a dict: `bad_step` (-1 if none), `part_sums`
    (a row per part, `max_parts` rows) and `host_flags` (as raised by any
    worker).
    """
    if self._function is None:

      def run(start_step, num_steps, host_flags):
        part_sums, bad_step = self._train_loop(start_step, num_steps)
        # The step reached: the bad step's, if one was not finite.
        self._global_step.assign(tf.where(bad_step >= 0, bad_step, start_step + num_steps))
        flags = self._replicas.any_worker(tf.cast(host_flags, tf.float32)) > 0
        return {'bad_step': bad_step, 'part_sums': part_sums, 'host_flags': flags}

      specs = (tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.int64),
               tf.TensorSpec([2], tf.bool))
      # Its concrete function: the call skips matching arguments to traces.
      self._function = compiled(run, self._xla is Xla.LOOP, 'loop', *specs)
    return self._function
