"""What a data builder returns: the unbatched examples of one split.

A data set builder (e.g. `models.regression_data.synthetic_regression`) is
called as `data(split)` and returns the *unbatched* examples of that split,
as arrays (a tuple or dict of arrays sharing their first dimension) or as a
`tf.data.Dataset`. Keeping the builder and the batching apart lets the
Trainer own the batch size, the seed and sharding, whatever the data.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import numpy as np
import tensorflow as tf

Examples = Union[Tuple[np.ndarray, ...], tf.data.Dataset]


def is_arrays(examples: Examples) -> bool:
  """Whether a builder returned arrays (rather than a `tf.data.Dataset`)."""
  return all(isinstance(t, (np.ndarray, tf.Tensor)) for t in tf.nest.flatten(examples))


def num_examples(examples: Examples) -> Optional[int]:
  """The number of examples in a split, or None when it is not known."""
  if isinstance(examples, tf.data.Dataset):
    size = int(examples.cardinality())
    return size if size >= 0 else None
  return len(tf.nest.flatten(examples)[0])


def first_examples(examples: Examples, n: int) -> Examples:
  """The first `n` examples of a split."""
  if isinstance(examples, tf.data.Dataset):
    return examples.take(n)
  return tf.nest.map_structure(lambda array: array[:n], examples)


def first_batch(examples: Examples, n: int) -> Any:
  """The first `n` examples of a split as one batch (eagerly)."""
  if isinstance(examples, tf.data.Dataset):
    return next(iter(examples.take(n).batch(n)))
  return tf.nest.map_structure(lambda array: tf.convert_to_tensor(array[:n]), examples)
