"""The Trainer's view of a tf.distribute strategy: its scope, replicas, workers and reductions."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import tensorflow as tf
from absl import logging

from gin_trainer.errors import ConfigError

Scalars = Dict[str, tf.Tensor]


# Strategies whose execution model the Trainer's loops do not fit, and why.
_UNSUPPORTED = {
    'ParameterServerStrategy': 'it runs steps asynchronously through a ClusterCoordinator, '
                               'while the Trainer runs synchronous in-graph loops',
    'TPUStrategy': "the Trainer's loops have never run on a TPU, so they are refused "
                   'rather than trusted untested',
}


class Replicas:
  """The Trainer's view of a strategy: its scope, its replicas, its workers.

  Steps run once per replica on a shard of the global batch; their scalars
  come back as one value: `mean` for a train step (replicas see equal
  shards), `total` for an evaluation's weighted sums. Under the default
  strategy each of these is the step itself.

  Args:
    strategy: A strategy, or None for TensorFlow's default strategy (one device).

  Raises:
    ConfigError: The strategy is one the Trainer does not support.
  """

  def __init__(self, strategy: Optional[tf.distribute.Strategy] = None):
    self.strategy = strategy or tf.distribute.get_strategy()
    kind = type(self.strategy).__name__
    for unsupported, reason in _UNSUPPORTED.items():
      if kind.startswith(unsupported):
        raise ConfigError(f'Trainer.strategy: {kind} is not supported: {reason}. Use '
                          '@mirrored_strategy or @multi_worker_mirrored_strategy')
    self.distributed = self.strategy is not tf.distribute.get_strategy() or (
        self.strategy.num_replicas_in_sync > 1)
    resolver = getattr(self.strategy, 'cluster_resolver', None)
    self.multi_worker = bool(resolver and resolver.cluster_spec().jobs)
    self.task_type = resolver.task_type if self.multi_worker else None
    self.task_id = resolver.task_id if self.multi_worker else 0
    if self.distributed:
      worker = f', {self.task_type} {self.task_id}' if self.multi_worker else ''
      logging.info('Training on %d replicas with %s%s%s.', self.num_replicas, kind, worker,
                   ' (chief)' if self.is_chief else '')

  @property
  def num_replicas(self) -> int:
    """Replicas that train in sync, over all workers."""
    return self.strategy.num_replicas_in_sync

  @property
  def is_chief(self) -> bool:
    """Whether this process writes summaries, the operative config and checkpoints.

    The chief is worker 0 (or the task named 'chief'); a single process is its own chief.
    """
    if not self.multi_worker:
      return True
    has_chief = 'chief' in self.strategy.cluster_resolver.cluster_spec().jobs
    return self.task_type == 'chief' or (
        not has_chief and self.task_type == 'worker' and self.task_id == 0)

  def scope(self) -> Any:
    """The strategy's scope: variables created under it are mirrored on every replica."""
    return self.strategy.scope()

  def per_replica_batch(self, global_batch: int, binding: str) -> int:
    """The batch each replica gets of a global batch.

    Raises:
      ConfigError: The global batch does not split evenly among the replicas.
    """
    if global_batch % self.num_replicas:
      raise ConfigError(f'{binding}={global_batch} is the global batch and must split evenly '
                        f'among the {self.num_replicas} replicas; bind a multiple of '
                        f'{self.num_replicas}')
    return global_batch // self.num_replicas

  def first_replica(self, step_fn: Callable[[Any], Scalars]) -> Callable[[Any], Scalars]:
    """`step_fn` run on every replica; returns the first replica's outputs (to trace)."""
    if not self.distributed:
      return step_fn
    return lambda batch: self.strategy.experimental_local_results(
        self.strategy.run(step_fn, (batch,)))[0]

  def mean(self, step_fn: Callable[[Any], Scalars]) -> Callable[[Any], Scalars]:
    """`step_fn` run on every replica's shard; returns each scalar's mean over replicas."""
    return self._reduced(step_fn, tf.distribute.ReduceOp.MEAN)

  def total(self, step_fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`step_fn` run on every replica's shard; returns each output's sum over replicas."""
    return self._reduced(step_fn, tf.distribute.ReduceOp.SUM)

  def _reduced(self, step_fn: Callable[[Any], Any], op: tf.distribute.ReduceOp
               ) -> Callable[[Any], Any]:
    if not self.distributed:
      return step_fn

    def replica_step(batch: Any) -> Any:
      # Reduced in the replica context: one batched all-reduce, which works
      # alike on one machine and on several (strategy.reduce of a worker's
      # single replica's outputs does not).
      # (tf.identity places each value on the replica's device: a variable
      # read, e.g. the learning rate, has none, which the all-reduce needs.)
      outputs = tf.nest.map_structure(lambda value: tf.identity(tf.cast(value, tf.float32)),
                                      step_fn(batch))
      return tf.distribute.get_replica_context().all_reduce(op, outputs)

    def run(batch: Any) -> Any:
      outputs = self.strategy.run(replica_step, (batch,))
      return self.strategy.experimental_local_results(outputs)[0]
    return run

  # No Python control flow on tensors: AutoGraph's conversion would only cost start-up.
  @tf.autograph.experimental.do_not_convert
  def any_worker(self, flags: tf.Tensor) -> tf.Tensor:
    """In the graph: which of the host `flags` (0/1) any worker raised.

    Host decisions that change what the workers run together (stop now,
    save now) must be the same on every worker, or their collectives would
    wait for each other forever.
    """
    if not self.multi_worker:
      return flags
    summed = self.strategy.run(lambda: tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, tf.identity(flags)))  # identity: on the replica's device.
    return tf.minimum(self.strategy.experimental_local_results(summed)[0], 1.0)


def replicas_in_sync() -> int:
  """In a step: how many replicas run it at once (1 outside a strategy)."""
  context = tf.distribute.get_replica_context()
  return context.num_replicas_in_sync if context is not None else 1
