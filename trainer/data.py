"""The input pipeline shared by every data set: shuffle, batch, cache, prefetch.

A data set builder (e.g. `models.regression_data.synthetic_regression`) returns
the *unbatched* examples of one split, as a tuple of numpy arrays or as a
`tf.data.Dataset`; `input_pipeline` turns them into batches. Keeping the
builder and the pipeline apart lets the Trainer own the batch size, the seed
and (later) per-replica sharding, whatever the data.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import gin
import numpy as np
import tensorflow as tf

Examples = Union[Tuple[np.ndarray, ...], tf.data.Dataset]


def num_examples(examples: Examples) -> Optional[int]:
  """The number of examples in a split, or None when it is not known."""
  if isinstance(examples, tf.data.Dataset):
    size = int(examples.cardinality())
    return size if size >= 0 else None
  return len(tf.nest.flatten(examples)[0])


@gin.configurable(denylist=['examples', 'batch_size', 'training', 'seed'])
def input_pipeline(examples: Examples,
                   batch_size: int,
                   training: bool,
                   seed: Optional[int] = None,
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
    shuffle_buffer: Examples in the shuffle buffer; None shuffles the whole
      split when its size is known (else 10,000); 0 turns shuffling off.
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
    buffer = shuffle_buffer if shuffle_buffer is not None else (num_examples(examples) or 10_000)
    if buffer > 0:
      dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=True).repeat()
  else:
    dataset = dataset.batch(batch_size)
  if prefetch:
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
  return dataset

