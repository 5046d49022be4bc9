"""Checks of a data set's values before training (`Trainer.check_data_finite`)."""

from __future__ import annotations

from typing import Any, Callable, Iterator, Tuple

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from gin_trainer.data.examples import Examples
from gin_trainer.errors import DataError

# Elements of a tf.data split read per host call while checking it.
_CHUNK = 1024


def finite_checked(data: Callable[[str], Examples]) -> Callable[[str], Examples]:
  """Wraps a data builder so that every split it builds is checked by `check_finite`."""

  def checked(split: str) -> Examples:
    examples = data(split)
    check_finite(examples, split)
    return examples

  return checked


def check_finite(examples: Examples, split: str) -> None:
  """Checks that every float value of a split is finite.

  Arrays are checked whole. A `tf.data.Dataset` is read once, in full, on
  the host; an infinite one cannot be and is skipped with a warning.

  Args:
    examples: One split, as a data builder returns it.
    split: Its name, for the message.

  Raises:
    DataError: An array holds NaN or Inf; the message names the split, the
      array (its position or key in the example), how many values and the
      index of the first.
  """
  if isinstance(examples, tf.data.Dataset):
    if int(examples.cardinality()) in (int(tf.data.INFINITE_CARDINALITY),
                                       int(tf.data.UNKNOWN_CARDINALITY)):
      logging.warning('Trainer.check_data_finite: the %r split is a tf.data.Dataset of infinite '
                      'or unknown size; not checked.', split)
      return
    chunks = _dataset_chunks(examples)
  else:
    chunks = iter([(0, examples)])
  counts, first = {}, {}
  for offset, chunk in chunks:
    for path, array in keras.tree.flatten_with_path(chunk):
      name, array = '/'.join(str(part) for part in path), np.asarray(array)
      if not np.issubdtype(array.dtype, np.floating):
        continue
      bad = ~np.isfinite(array)
      count = int(bad.sum())
      if count:
        counts[name] = counts.get(name, 0) + count
        if name not in first:
          index = np.unravel_index(int(np.argmax(bad)), array.shape)
          first[name] = (offset + int(index[0]),) + tuple(int(i) for i in index[1:])
  if counts:
    name = next(iter(counts))
    array = f'array {name}' if name else 'its array'
    raise DataError(
        f'Trainer.check_data_finite: the {split!r} split, {array}: {counts[name]} NaN or Inf '
        f'value(s), the first at index {first[name]}; clean the data, or drop those examples')


def _dataset_chunks(dataset: tf.data.Dataset) -> Iterator[Tuple[int, Any]]:
  """(index of its first example, a batch of examples as numpy) over the whole data set."""
  offset = 0
  for chunk in dataset.batch(_CHUNK).as_numpy_iterator():
    yield offset, chunk
    offset += len(tf.nest.flatten(chunk)[0])
