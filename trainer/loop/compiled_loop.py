"""The one `tf.function` call each loop makes: train steps, and the evaluation if due."""

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
    seconds: The host's time of the call.
    first_call: Whether this was its function's first call, whose time
      includes tracing and compiling it.
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
  """Runs up to K train steps, and the evaluation if due, in one call of a `tf.function`.

  The function (XLA-compiled where `xla` says) runs the train steps, sets
  the global step and evaluates if asked. Over segmented data
  (`Batches.segmented`) the loop may run across summary interval
  boundaries and returns each part's sums. Building it traces the steps
  once, which creates every variable they use. There are two functions,
  with and without the evaluation, each traced at its first call; the same
  one runs on every worker of a cluster, as their collectives must.

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
    self._eval_loop = None
    if val_data is not None:
      self.eval_scalars, self._eval_loop = self._evaluation_loop(val_data)
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
    self._functions: Dict[bool, Callable[..., Any]] = {}

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
    first_call = evaluate not in self._functions
    function = self.function(evaluate)
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
    val_means = {name: float(value) for name, value in out['val_means'].items()}
    stop_any, save_any = out['host_flags'].tolist()
    return LoopResult(parts, non_finite, val_means, stop_any, save_any, steps, seconds,
                      first_call)

  def evaluation(self, data: Batches) -> Callable[[], Dict[str, float]]:
    """A whole evaluation of another split's batches, as one call returning its means."""
    _, loop = self._evaluation_loop(data)
    function = compiled(loop, self._xla is Xla.LOOP and data.compilable, 'evaluation')
    return lambda: {name: float(value) for name, value in function().items()}

  def _evaluation_loop(self, data: Batches) -> Tuple[List[str], Callable[[], Scalars]]:
    """The eval step's scalar names on `data`, and the graph loop evaluating all of it."""
    names = list(graph_loops.scalar_specs(
        self._replicas.first_replica(self._eval_step), data.element_spec, 'eval_step'))
    means = graph_loops.make_eval_loop(
        self._replicas.total(graph_loops.weighted_by_size(self._eval_step)), data, names)
    if not self._eval_metrics:
      return names, means

    def means_and_metrics():
      for metric in self._eval_metrics.values():  # Each evaluation starts afresh.
        metric.reset_state()
      return {**means(), **{name: metric.result() for name, metric in self._eval_metrics.items()}}

    return names + list(self._eval_metrics), means_and_metrics

  def function(self, evaluate: bool) -> Callable[..., Any]:
    """The loop's `tf.function`, with or without the evaluation (built at its first use).

    It takes the start step, the number of steps and the host's flags
    (stop, save), and returns a dict: `bad_step` (-1 if none), `part_sums`
    (a row per part, `max_parts` rows), `val_means` and `host_flags` (as
    raised by any worker).
    """
    if evaluate not in self._functions:

      def run(start_step, num_steps, host_flags):
        part_sums, bad_step = self._train_loop(start_step, num_steps)
        # The step reached: the bad step's, if one was not finite.
        self._global_step.assign(tf.where(bad_step >= 0, bad_step, start_step + num_steps))
        val_means = self._eval_loop() if evaluate else {}
        flags = self._replicas.any_worker(tf.cast(host_flags, tf.float32)) > 0
        return {'bad_step': bad_step, 'part_sums': part_sums, 'val_means': val_means,
                'host_flags': flags}

      specs = (tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.int64),
               tf.TensorSpec([2], tf.bool))
      # Its concrete function: the call skips matching arguments to traces.
      self._functions[evaluate] = compiled(run, self._xla is Xla.LOOP, 'loop',
                                           *specs).get_concrete_function(*specs)
    return self._functions[evaluate]
