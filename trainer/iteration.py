"""The one `tf.function` call each loop makes: train steps, and whatever is due."""

from __future__ import annotations

import functools
import gc
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import tensorflow as tf

from trainer import loops
from trainer.distribution import Replicas
from trainer.errors import ConfigError
from trainer.summary_manager import SummaryManager

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

  Each call is one call of a concrete `tf.function`: it writes the points
  that the previous call made (`SummaryManager.pending`: a train point's
  throughput is known only once its call is over), then runs the loop, one
  XLA-compiled function where possible: the train steps, the global step
  and, if due, the evaluation. It returns the loop's sums, which the host
  adds to the interval's. Python booleans
  choose what it writes and whether it evaluates, so each combination is
  a function of its own, traced before it is timed and called directly,
  the same on every worker of a cluster (as their collectives must be).
  If a watched scalar turns non-finite, the loop stops there and the
  call's points are not written.

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
    self._train_loop = loops.make_train_loop(replicas.mean(train_step), train_data,
                                             self.train_scalars, check_finite, jit_compile)
    self.eval_scalars = []
    self._eval_loop = None
    if val_data is not None:
      self.eval_scalars = list(loops.scalar_specs(replicas.first_replica(eval_step),
                                                  val_data.element_spec, 'eval_step'))
      self._eval_loop = loops.make_eval_loop(replicas.total(loops.weighted_by_size(eval_step)),
                                             val_data, self.eval_scalars)
    summaries.track(self.train_scalars, self.eval_scalars)
    self._summaries = summaries
    self._global_step = global_step
    self._replicas = replicas
    self._watch = tuple(check_finite)
    self._train_tags = summaries.train_tags
    self._jit_compile = jit_compile and all(data.compilable for data in (train_data, val_data)
                                            if data is not None)
    self._loops: Dict[bool, Callable[..., tf.Tensor]] = {}
    self._calls: Dict[Tuple[bool, ...], Callable[..., tf.Tensor]] = {}

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
    pending = summaries.pending
    # What the graph writes is chosen by Python booleans (a tf.cond costs a
    # call 40 us), except on a cluster, whose workers must trace the same
    # functions: only the chief knows which points are on disk already.
    in_graph = {split: split in pending and (self._replicas.multi_worker or pending[split].all_new)
                for split in ('train', 'val')}
    call = self._concrete(evaluate, in_graph['train'], in_graph['val'])  # Traces the first time.
    train, val = pending.get('train'), pending.get('val')
    # One input vector each way: each tensor costs the call microseconds.
    ints = tf.constant([start_step, num_steps, train.x if train else 0, val.x if val else 0,
                        bool(train and train.all_new), bool(val and val.all_new)], tf.int64)
    floats = tf.constant([*(train.values.values() if train else [0.0] * len(self._train_tags)),
                          *(val.values.values() if val else [0.0] * len(self.eval_scalars)),
                          *host_flags], tf.float64)
    began = time.perf_counter()
    packed = call(ints, floats).numpy()  # Waits for the call to finish.
    # The call's evaluation too: a clock read between the two, in the graph,
    # cost 100 us per call (tf.timestamp refuses to run under op determinism).
    seconds = time.perf_counter() - began
    summaries.written()
    bad_step, values = int(packed[0]), iter(packed[1:].tolist())
    sums = {name: next(values) for name in self.train_scalars}
    val_values = {name: next(values) for name in self.eval_scalars} if evaluate else {}
    flags = [next(values) for _ in host_flags]
    watched = [sums[name] for name in self._watch]
    if bad_step >= 0:
      return Outcome(bad_step, watched, {}, {}, flags)
    summaries.add_loop(sums, num_steps, seconds)
    train_values = summaries.end_interval(end) if interval_ends else {}
    if evaluate:
      summaries.evaluated(end, val_values)
    return Outcome(bad_step, watched, train_values, val_values, flags)

  def _concrete(self, *key: bool) -> Callable[..., tf.Tensor]:
    if key not in self._calls:
      self._calls[key] = tf.function(functools.partial(self._run, *key)).get_concrete_function(
          tf.TensorSpec([6], tf.int64), tf.TensorSpec([None], tf.float64))
      # Tracing leaves ~300,000 Python objects; a full collection scanning
      # them paused the loop 160 ms. Frozen, the collector skips them (the
      # Trainer unfreezes them when training ends).
      gc.freeze()
    return self._calls[key]

  def _run(self, evaluate, write_train, write_val, ints, floats):
    """The call: `ints`, `floats` as `__call__` packs them; returns one float64 vector."""
    start_step, num_steps, train_x, val_x, train_new, val_new = tf.unstack(ints)
    train_point, val_point, host_flags = tf.split(
        floats, [len(self._train_tags), len(self.eval_scalars), -1])
    cluster, writes = self._replicas.multi_worker, []
    if write_train:
      writes += self._summaries.write('train', train_x, train_point,
                                      train_new > 0 if cluster else None)
    if write_val:
      writes += self._summaries.write('val', val_x, val_point, val_new > 0 if cluster else None)
    # Written before the loop starts, not beside it: a point's wall time is
    # then the start of the call (nothing else orders them).
    with tf.control_dependencies(writes):
      packed = self._loop(evaluate)(start_step, num_steps)
    flags = self._replicas.any_worker(tf.cast(host_flags, tf.float32))
    return tf.concat([packed, tf.cast(flags, tf.float64)], 0)

  def _loop(self, evaluate: bool) -> Callable[..., tf.Tensor]:
    """The loop's function, compiled with XLA where possible (each variant at its first call)."""
    if evaluate not in self._loops:

      def run(start_step, num_steps):
        sums, bad_step = self._train_loop(start_step, num_steps)
        self._global_step.assign(start_step + num_steps)
        parts = [bad_step, *(sums[name] for name in self.train_scalars)]
        if evaluate:
          val_means = self._eval_loop()
          parts += [val_means[name] for name in self.eval_scalars]
        return tf.stack([tf.cast(part, tf.float64) for part in parts])

      self._loops[evaluate] = loops.compiled(run, self._jit_compile, 'loop', _INT, _INT)
    return self._loops[evaluate]


_INT = tf.TensorSpec([], tf.int64)

