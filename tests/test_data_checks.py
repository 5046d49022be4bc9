"""NaN and Inf in a split, found before training."""

import numpy as np
import pytest
import tensorflow as tf

from gin_trainer.data.finite_checks import check_finite
from gin_trainer.errors import DataError


def test_arrays_name_the_array_the_count_and_the_first_index():
  x = np.zeros((10, 3), np.float32)
  x[4, 2] = np.nan
  x[6, 0] = -np.inf
  labels = np.arange(10)  # Integers cannot be NaN; not checked.
  with pytest.raises(DataError, match=r"the 'train' split, array 0: 2 NaN or Inf value\(s\), "
                                      r'the first at index \(4, 2\)'):
    check_finite((x, labels), 'train')
  check_finite((np.ones((10, 3), np.float32), labels), 'train')


def test_a_dataset_is_read_in_full_and_indexed_across_chunks():
  x = np.zeros((3000, 2), np.float32)
  x[2500, 1] = np.inf
  dataset = tf.data.Dataset.from_tensor_slices({'image': x})
  with pytest.raises(DataError, match=r"the 'val' split, array image: 1 NaN or Inf value\(s\), "
                                      r'the first at index \(2500, 1\)'):
    check_finite(dataset, 'val')
  check_finite(dataset.repeat(), 'val')  # Infinite: skipped with a warning.
