"""One split read by every replica of a tf.distribute strategy, through tf.data.

The global batch of each step is the batch a one-device run trains on at
that step, so a run gives the same results on any number of replicas. Each
global batch is split into per-replica batches (`rebatch`), and the
per-replica batches are dealt among the input pipelines, one per worker
(`shard`), so a worker feeds only its own replicas. The strategy places them
with `distribute_datasets_from_function`.

TensorFlow cannot checkpoint a distributed iterator (tensorflow#56372), so
the position in the data is the global step: after restoring, `seek(step)`
starts the pipeline at the batch of that step (array splits jump there; a
`tf.data.Dataset` is replayed from its seeded start).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import tensorflow as tf

from gin_trainer.data.contract import batches_per_epoch
from gin_trainer.data.device import DeviceData
from gin_trainer.data.examples import Examples, is_arrays, num_examples
from gin_trainer.data.pipeline import IteratorData, input_pipeline
from gin_trainer.distribute.replicas import Replicas


class DistributedData(IteratorData):
  """One split, sharded among a strategy's replicas (see the module docstring).

  Not `segmented` (see `IteratorData`): besides, a while loop nested in
  another, around collectives, hung two workers.

  Attributes:
    element_spec: The spec of one replica's batch.
    steps_per_epoch: Global batches per epoch, or None when the size is unknown.
  """

  def __init__(self, replicas: Replicas, examples: Examples, global_batch: int,
               training: bool, binding: str, shuffle: bool = True, on_device: bool = True):
    """Prepares the split; training reads nothing before `seek`.

    Args:
      replicas: The strategy to distribute over.
      examples: Unbatched examples (arrays or a `tf.data.Dataset`).
      global_batch: Examples per step over all replicas.
      training: Shuffle, drop each epoch's last partial batch, repeat.
      binding: The batch size's binding, named if it does not split evenly.
      shuffle: Reorder the training examples every epoch.
      on_device: Order array splits as `DeviceData` does (else as `input_pipeline`).
    """
    self._replicas = replicas
    self._per_replica = replicas.per_replica_batch(global_batch, binding)
    self._examples = examples
    self._global_batch = global_batch
    self._shuffle = shuffle
    self._arrays: Optional[DeviceData] = None
    if training and on_device and is_arrays(examples):
      with tf.device('/cpu:0'):  # Read by tf.data, on the host.
        self._arrays = DeviceData(examples, global_batch, training=True, shuffle=shuffle)
    self.steps_per_epoch = batches_per_epoch(num_examples(examples), global_batch, training)
    self._finite = None if training else self._distribute(
        lambda: input_pipeline(examples, global_batch, training=False))
    sample = self._global_batches(0, seed=0) if training else input_pipeline(
        examples, global_batch, training=False)
    per_replica = self._per_replica if training else None
    self.element_spec = tf.nest.map_structure(
        lambda spec: tf.TensorSpec([per_replica] + spec.shape[1:].as_list(), spec.dtype),
        sample.element_spec)

  def _global_batches(self, start_step: int, seed: int) -> tf.data.Dataset:
    """Training's global batches from step `start_step` on, as one device would train on them."""
    if self._arrays is not None:
      return self._arrays.batches_from(start_step, seed)
    pipeline = input_pipeline(self._examples, self._global_batch, training=True,
                                       seed=seed, shuffle=self._shuffle)
    return pipeline.skip(start_step)

  def _distribute(self, global_batches: Callable[[], tf.data.Dataset]) -> Any:
    def replica_batches(context: tf.distribute.InputContext) -> tf.data.Dataset:
      dataset = global_batches().rebatch(self._per_replica)
      dataset = dataset.shard(context.num_input_pipelines, context.input_pipeline_id)
      return dataset.prefetch(tf.data.AUTOTUNE)
    return self._replicas.strategy.distribute_datasets_from_function(replica_batches)

  def checkpoint_items(self) -> Dict[str, Any]:
    """Nothing: the position in the data is the global step (see `seek`)."""
    return {}

  def seek(self, step: int, seed: int) -> None:
    """Starts training's reading at the batch of global step `step`.

    Args:
      step: The global step reached (after restoring a checkpoint).
      seed: The data seed (restored with the checkpoint).
    """
    self._iterator = iter(self._distribute(lambda: self._global_batches(step, seed)))
