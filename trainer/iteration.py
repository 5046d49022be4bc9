"""The one `tf.function` call each loop makes: train steps, and whatever is due."""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import tensorflow as tf

from trainer import loops
from trainer import progress
from trainer.distribution import Replicas
from trainer.errors import ConfigError
from trainer.summary_manager import Point, SummaryManager

Scalars = Dict[str, tf.Tensor]


class Outcome(NamedTuple):
  """What one iteration returns.

  Attributes:
    bad_step: The step at which a watched scalar was first non-finite, or -1
      (nothing else is then filled in).
    watched: The sums of the watched scalars over the loop's steps (the
      non-finite one is non-finite as the step's value was).
    train_values: The values of the interval that ended (empty if none did).
    val_values: The evaluation's means (empty if it did not evaluate).
    host_flags: The call's `host_flags`, raised (1.0) where any worker raised them.
  """
  bad_step: int
  watched: List[float]
  train_values: Dict[str, float]
  val_values: Dict[str, float]
  host_flags: List[float]


class Iteration:
  """Runs up to K train steps, and the summaries and evaluation due, in one call.

  Each call is one call of a concrete `tf.function`: it writes the interval
  that the previous call ended (its throughput is known only once that call
  is over, see `SummaryManager.ended`), runs the train loop (XLA-compiled
  where possible; it also adds to the interval's sums and sets the global
  step), and evaluates if due. One Python boolean (evaluate) chooses the
  function; everything else is a tensor, so a run has one or two functions,
  traced before they are timed, and the same on every worker of a cluster,
  as their collectives must be. If a watched scalar turns non-finite, the
  loop stops there and the evaluation writes nothing.

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
    summaries.track(self.train_scalars)
    train_loop = loops.make_train_loop(replicas.mean(train_step), train_data,
                                       self.train_scalars, check_finite, jit_compile)

    def train(start_step, num_steps, restart):
      sums, bad_step = train_loop(start_step, num_steps)
      summaries.accumulate(sums, num_steps, restart)
      global_step.assign(start_step + num_steps)
      watched = [sums[name] for name in check_finite]
      return bad_step, tf.stack(watched) if watched else tf.zeros([0])

    self._train = loops.compiled(train, jit_compile and train_data.compilable, 'train loop',
                                 _INT, _INT, tf.TensorSpec([], tf.bool))
    self.eval_scalars = []
    self._eval_loop = None
    if val_data is not None:
      self.eval_scalars = list(loops.scalar_specs(replicas.first_replica(eval_step),
                                                  val_data.element_spec, 'eval_step'))
      self._eval_loop = loops.make_eval_loop(
          replicas.total(loops.weighted_by_size(eval_step)), val_data, self.eval_scalars,
          jit_compile)
    self._summaries = summaries
    self._replicas = replicas
    self._watch = tuple(check_finite)
    self._calls: Dict[bool, Callable[..., Any]] = {}

  def __call__(self, start_step: int, num_steps: int, interval_ends: bool, evaluate: bool,
               host_flags: Sequence[bool]) -> Outcome:
    """Runs one iteration.

    Args:
      start_step: The global step before the iteration.
      num_steps: Train steps to run.
      interval_ends: The summary interval ends with the last step.
      evaluate: Evaluate (and write val/) after the last step.
      host_flags: Decisions of this process for after the call (e.g. stop,
        save), combined over the workers of a cluster (see `Outcome`).

    Returns:
      The outcome.
    """
    summaries, end = self._summaries, start_step + num_steps
    ended = summaries.ended
    val_emit = summaries.new_tags('val', self.eval_scalars, end) if evaluate else ()
    call = self._concrete(evaluate)  # Traces the first time.
    # Few inputs and outputs: each costs the call microseconds.
    ints = tf.constant([start_step, num_steps, summaries.x(end), ended.x if ended else 0,
                        ended is not None, ended is not None and all(ended.emit),
                        all(val_emit)], tf.int64)
    throughput = ended.throughput() if ended else [0.0] * len(progress.THROUGHPUT)
    began = time.perf_counter()
    packed = call(ints, tf.constant([began, *throughput, *host_flags], tf.float64)).numpy()
    # With an evaluation, the graph read the clock between training and evaluating.
    summaries.add_seconds(packed[0] if evaluate else time.perf_counter() - began)
    summaries.ended_written()
    bad_step, steps, values = int(packed[1]), float(packed[2]), iter(packed[3:].tolist())
    watched = [next(values) for _ in self._watch]
    flags = [next(values) for _ in host_flags]
    if bad_step >= 0:
      return Outcome(bad_step, watched, {}, {}, flags)
    means = {name: next(values) for name in self.train_scalars}
    train_values = summaries.end_interval(end, means, steps) if interval_ends else {}
    val_values = {name: next(values) for name in self.eval_scalars} if evaluate else {}
    if evaluate:
      summaries.write_point('val', Point(summaries.x(end), val_values, val_emit), graph_wrote=True)
    return Outcome(bad_step, watched, train_values, val_values, flags)

  def _concrete(self, evaluate: bool) -> Callable[..., Any]:
    if evaluate not in self._calls:
      self._calls[evaluate] = tf.function(functools.partial(self._run, evaluate)
                                          ).get_concrete_function(
          tf.TensorSpec([7], tf.int64), tf.TensorSpec([None], tf.float64))
    return self._calls[evaluate]

  def _run(self, evaluate, ints, floats):
    """The call: `ints`, `floats` as `__call__` packs them; returns one float64 vector."""
    start_step, num_steps, x, ended_x, restart, write_ended, val_emit = tf.unstack(ints)
    began, host_flags = floats[0], floats[1 + len(progress.THROUGHPUT):]
    self._summaries.write_train(ended_x, tf.cast(floats[1:1 + len(progress.THROUGHPUT)],
                                                  tf.float32), write_ended > 0)
    bad_step, watched = self._train(start_step, num_steps, restart > 0)
    train_means, steps = self._summaries.interval_means()
    val_means, train_seconds = {}, tf.constant(0.0, tf.float64)
    if evaluate:  # Not under tf.cond(bad_step < 0): a cluster cannot start iterating data in a branch.
      # Train time from the host's clock reading before the call; the
      # control dependencies order the read between the loop and the evaluation.
      with tf.control_dependencies([bad_step]):
        train_seconds = _clock() - began
      with tf.control_dependencies([train_seconds]):
        val_means = self._eval_loop()
      self._summaries.write_val(x, val_means, tf.logical_and(val_emit > 0, bad_step < 0))
    flags = self._replicas.any_worker(tf.cast(host_flags, tf.float32))
    parts = [train_seconds, bad_step, steps, watched, flags, *train_means.values(),
             *val_means.values()]
    return tf.concat([tf.reshape(tf.cast(part, tf.float64), [-1]) for part in parts], 0)


_INT = tf.TensorSpec([], tf.int64)


def _clock() -> tf.Tensor:
  """Host time in seconds (`time.perf_counter`), read in the graph.

  Not tf.timestamp: it refuses to run under op determinism.
  """
  return tf.numpy_function(time.perf_counter, [], tf.float64, stateful=True)
