"""The one `tf.function` call each loop makes: train steps, then whatever is due."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence

import tensorflow as tf

from trainer import loops
from trainer.distribution import Replicas
from trainer.errors import ConfigError
from trainer.summary_manager import SummaryManager

Scalars = Dict[str, tf.Tensor]


class Outcome(NamedTuple):
  """What one iteration returns (device tensors).

  Attributes:
    train_values: The interval's values written to train/ (empty if the
      interval did not end).
    val_values: The evaluation's means (empty if it did not evaluate).
    bad_step: The step at which a watched scalar was first non-finite, or -1.
    watched: The watched scalars at the last step run.
    host_flags: The call's `host_flags`, raised where any worker raised them.
  """
  train_values: Scalars
  val_values: Scalars
  bad_step: tf.Tensor
  watched: tf.Tensor
  host_flags: tf.Tensor


class Iteration:
  """Runs up to K train steps, and the summaries and evaluation due after them, in one call.

  The train loop (XLA-compiled where possible), the interval's accumulation,
  the summary writes and the evaluation all run in one `tf.function` call,
  so a loop costs one host round trip whatever is due. Two Python booleans
  choose what is due (the interval ends; evaluate): one trace per
  combination, the same on every worker of a cluster, as their collectives
  must be. If a watched scalar turns non-finite, the loop stops there and
  nothing is written.

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
    self._train_loop = loops.make_train_loop(replicas.mean(train_step), train_data,
                                             self.train_scalars, check_finite, jit_compile)
    self.eval_scalars = []
    self._eval_loop = None
    if val_data is not None:
      self.eval_scalars = list(loops.scalar_specs(replicas.first_replica(eval_step),
                                                  val_data.element_spec, 'eval_step'))
      self._eval_loop = loops.make_eval_loop(
          replicas.total(loops.weighted_by_size(eval_step)), val_data, self.eval_scalars,
          jit_compile)
    self._summaries = summaries
    self._global_step = global_step
    self._replicas = replicas
    self._function = tf.function(self._run)

  def __call__(self, start_step: int, num_steps: int, x: int, interval_ends: bool,
               train_emit: Sequence[bool], evaluate: bool, val_emit: Sequence[bool],
               host_flags: Sequence[bool]) -> Outcome:
    """Runs one iteration.

    Args:
      start_step: The global step before the iteration.
      num_steps: Train steps to run.
      x: The x-axis value of the step reached.
      interval_ends: End the summary interval (write train/).
      train_emit: Per tag of `summaries.train_tags`, whether to write it.
      evaluate: Evaluate (write val/).
      val_emit: Per tag of `eval_scalars`, whether to write it.
      host_flags: Decisions of this process for after the call (e.g. stop,
        save), combined over the workers of a cluster (see `Outcome`).

    Returns:
      The outcome, as device tensors.
    """
    args = (tf.constant(start_step, tf.int64), tf.constant(num_steps, tf.int64),
            tf.constant(x, tf.int64), interval_ends,
            _mask(train_emit, len(self._summaries.train_tags)), evaluate,
            _mask(val_emit, len(self.eval_scalars)),
            tf.constant(host_flags, tf.float32, shape=[len(host_flags)]))
    return Outcome(*self._function(*args))

  def _run(self, start_step, num_steps, x, interval_ends, train_emit, evaluate, val_emit,
           host_flags):
    # Timed in the graph around the train loop: not tracing, nor setting up a
    # new graph (a host clock before the call would count both), nor the
    # evaluation. Clock reads depend on nothing the loop computes, so
    # control dependencies order them.
    began = _clock()
    with tf.control_dependencies([began]):
      sums, bad_step, watched = self._train_loop(start_step, num_steps)
    with tf.control_dependencies([bad_step, *sums.values()]):
      seconds = _clock() - began
    self._summaries.accumulate(sums, num_steps, seconds)
    self._global_step.assign(start_step + num_steps)
    ok = bad_step < 0
    train_values = self._summaries.write_train(x, ok, train_emit) if interval_ends else {}
    val_values = {}
    if evaluate:  # Not under tf.cond(ok): a cluster cannot start iterating data in a branch.
      # After the clock read: nothing else keeps the evaluation (and its first
      # compilation) out of the time of the train loop.
      with tf.control_dependencies([seconds]):
        means = self._eval_loop()
      val_values = self._summaries.write_val(x, means, tf.logical_and(val_emit, ok))
    return train_values, val_values, bad_step, watched, self._replicas.any_worker(host_flags)


def _mask(emit: Sequence[bool], length: int) -> tf.Tensor:
  """Which tags to write, as a tensor: a new mask needs no new trace."""
  return tf.constant(list(emit) or [False] * length, tf.bool, shape=[length])


def _clock() -> tf.Tensor:
  """Host time in seconds (`time.perf_counter`), read in the graph.

  Not tf.timestamp: it refuses to run under op determinism.
  """
  return tf.numpy_function(time.perf_counter, [], tf.float64, stateful=True)
