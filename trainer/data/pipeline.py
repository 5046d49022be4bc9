"""The `tf.data` input pipeline (shuffle, batch, cache, prefetch) and its readers.

A `tf.data.Dataset` split (or arrays with `Trainer.data_on_device = False`)
goes through `input_pipeline` and is read by `PipelineData`, through an
iterator; `IteratorData` is what it shares with `DistributedData`.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import gin
import tensorflow as tf

from gin_trainer.data.contract import batches_per_epoch
from gin_trainer.data.examples import Examples, first_batch, num_examples



@gin.configurable(denylist=['examples', 'batch_size', 'training', 'seed', 'shuffle'])
def input_pipeline(examples: Examples,
                   batch_size: int,
                   training: bool,
                   seed: Optional[int] = None,
                   shuffle: bool = True,
                   shuffle_buffer: Optional[int] = None,
                   cache: bool = True,
                   prefetch: bool = True) -> tf.data.Dataset:
  """Batches one split of examples for training or evaluation.

  Training data is shuffled afresh every epoch, batched with the last partial
  batch dropped (so every step sees `batch_size` examples and shapes are
  static) and repeated forever; the Trainer counts epochs. Evaluation data
  is batched once, keeping the last partial batch.

  Args:
    examples: Unbatched examples: a tuple of arrays sharing their first
      dimension, or a `tf.data.Dataset` of single examples.
    batch_size: Examples per batch.
    training: Whether to shuffle, drop the remainder and repeat.
    seed: Seed of the shuffle, for a reproducible order.
    shuffle: Shuffle training examples (`Trainer.shuffle`).
    shuffle_buffer: Examples in the shuffle buffer; None shuffles the whole
      split when its size is known (else 10,000).
    cache: Cache a `tf.data.Dataset` split in memory after its first pass
      (arrays are in memory already).
    prefetch: Prepare the next batches while the current one trains.

  Returns:
    The batched `tf.data.Dataset`.
  """
  if isinstance(examples, tf.data.Dataset):
    dataset = examples.cache() if cache else examples
  else:
    dataset = tf.data.Dataset.from_tensor_slices(examples)
  if training:
    if shuffle:
      buffer = shuffle_buffer or num_examples(examples) or 10_000
      dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=True).repeat()
  else:
    dataset = dataset.batch(batch_size)
  if prefetch:
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
  return dataset


class IteratorData:
  """Training batches from an iterator, evaluation batches from a finite data set (`Batches`).

  What `PipelineData` and `DistributedData` share: the loops read training
  batches with `next` (the iterator knows its position, so there is no
  state) and fold over `self._finite` for evaluation.

  Attributes:
    compilable: False: iterator ops do not compile with XLA (the Trainer then
      compiles the step alone).
    segmented: False: the iterator reads on across epochs.
    streamed: True: `tf.data` prepares batches beside the loop.
  """

  compilable = False
  segmented = False
  streamed = True
  _iterator: Any = None
  _finite: Any = None
  _examples: Examples

  def start(self, start_step: tf.Tensor) -> tf.Tensor:
    """In the graph: no state to start from; the iterator knows where it is."""
    del start_step
    return tf.constant(0)

  def segment_end(self, step: tf.Tensor) -> tf.Tensor:
    """In the graph: never; one state serves the whole loop (not `segmented`)."""
    del step
    return tf.constant(tf.int64.max)

  def next(self, state: tf.Tensor, step: tf.Tensor) -> Any:
    """In the graph: the next batch of the training iterator."""
    del state, step
    return next(self._iterator)

  def fold(self, fn: Callable[[Any, Any], Any], state: Any) -> Any:
    """In the graph: `state = fn(state, batch)` over every evaluation batch."""
    for batch in self._finite:
      state = fn(state, batch)
    return state

  def take(self, n: int) -> Any:
    """The first `n` examples of the split as one batch (eagerly)."""
    return first_batch(self._examples, n)


class PipelineData(IteratorData):
  """One split through `input_pipeline`, read in the graph by the Trainer's loops (`Batches`).

  Training reads one iterator over the repeated data set, whose position
  (shuffle buffer included) is saved in checkpoints. Evaluation of a split
  of known size also reads one iterator, over the split repeated, one pass
  per evaluation: a new iterator per evaluation would set the pipeline up
  (its threads, tf.data's rewrites) every time. A split of unknown size is
  iterated afresh each time.

  Attributes:
    steps_per_epoch: Batches per epoch, or None when the size is unknown.
  """

  def __init__(self, examples: Examples, batch_size: int, training: bool,
               seed: Optional[int] = None, shuffle: bool = True):
    """Builds the pipeline (see `input_pipeline` for the arguments)."""
    self.dataset = input_pipeline(examples, batch_size, training, seed=seed, shuffle=shuffle)
    self._examples = examples
    self.element_spec = self.dataset.element_spec
    self.steps_per_epoch = batches_per_epoch(num_examples(examples), batch_size, training)
    self._iterator = iter(self.dataset) if training else None
    self._finite = self.dataset
    self._passes = None
    if not training and self.steps_per_epoch:
      self._passes = iter(self.dataset.repeat())

  def fold(self, fn: Callable[[Any, Any], Any], state: Any) -> Any:
    """In the graph: `state = fn(state, batch)` over every evaluation batch, in order."""
    if self._passes is None:
      return super().fold(fn, state)
    for _ in tf.range(self.steps_per_epoch):
      state = fn(state, next(self._passes))
    return state

  def checkpoint_items(self) -> Dict[str, Any]:
    """The training iterator, so a resumed run continues where it stopped."""
    return {'train_data': self._iterator} if self._iterator is not None else {}

  def seek(self, step: int, seed: int) -> None:
    """Nothing: the iterator, restored from the checkpoint, knows where it is."""
    del step, seed
