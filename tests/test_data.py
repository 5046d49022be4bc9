"""The embedded regression data, the tf.data pipeline and data held on the device."""

import numpy as np
import pytest
import tensorflow as tf

from gin_trainer.models.regression_data import synthetic_regression
from gin_trainer.data.examples import num_examples
from gin_trainer.data.pipeline import input_pipeline
from gin_trainer.data.device import DeviceData
from gin_trainer.errors import DataError


def test_splits_have_the_tutorial_shapes_and_are_reproducible():
  x, y = synthetic_regression('train')
  assert x.shape == (1000, 5) and y.shape == (1000, 1) and x.dtype == np.float32
  x_val, _ = synthetic_regression('val')
  assert x_val.shape == (200, 5)
  np.testing.assert_array_equal(x, synthetic_regression('train')[0])
  assert not np.array_equal(x[:200], x_val)
  x_test, y_test = synthetic_regression('test')
  assert x_test.shape == (200, 5) and y_test.shape == (200, 1)
  assert not np.array_equal(x_test, x_val)
  # The test split is drawn apart: train and val do not depend on its size.
  np.testing.assert_array_equal(synthetic_regression('val', num_test=7)[0], x_val)


def test_learnable_targets_are_linear_in_the_features_and_noise_is_not():
  for pure_noise, fits in ((False, True), (True, False)):
    x, y = synthetic_regression('train', pure_noise=pure_noise)
    design = np.hstack([x, np.ones((len(x), 1))])
    residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    assert (residual.var() < 0.02) == fits, pure_noise  # Noise std 0.1: variance 0.01.


def test_unknown_split_is_refused():
  with pytest.raises(ValueError, match="not 'holdout'"):
    synthetic_regression('holdout')


def test_training_batches_are_full_reshuffled_each_epoch_and_seeded():
  examples = (np.arange(10, dtype=np.float32),)
  assert num_examples(examples) == 10

  def two_epochs(seed):
    batches = input_pipeline(examples, batch_size=4, training=True, seed=seed).take(4)
    return [b[0].numpy().tolist() for b in batches]

  epochs = two_epochs(seed=1)
  assert all(len(batch) == 4 for batch in epochs)  # 10 // 4 = 2 full batches per epoch.
  assert epochs[:2] != epochs[2:]  # A new order every epoch ...
  assert epochs == two_epochs(seed=1)  # ... the same for the same seed.


def test_evaluation_batches_keep_the_last_partial_batch_in_order():
  examples = (np.arange(10, dtype=np.float32),)
  batches = [b[0].numpy().tolist() for b in input_pipeline(examples, 4, training=False)]
  assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def read_batches(data, first_step, count):
  """`count` training batches from 0-based step `first_step`, read as the train loop reads them.

  A state from `start(step)` serves until `segment_end(step)`, then a new one starts.
  """
  batches = []
  segment_end = first_step
  for step in range(first_step, first_step + count):
    step = tf.constant(step, tf.int64)
    if step == segment_end:
      state, segment_end = data.start(step), data.segment_end(step)
    batch = data.next(state, step)
    batches.append(batch[0].numpy().tolist())
  return batches


def epoch_batches(data, epoch):
  return read_batches(data, epoch * data.steps_per_epoch, data.steps_per_epoch)


def test_device_data_shuffles_each_epoch_from_the_seed_alone():
  examples = (np.arange(10, dtype=np.float32), np.arange(10, dtype=np.int32))
  data = DeviceData(examples, batch_size=4, training=True, seed=tf.Variable(3, dtype=tf.int64))
  assert data.steps_per_epoch == 2  # The last partial batch is dropped.
  first, second = epoch_batches(data, 0), epoch_batches(data, 1)
  assert first != second  # A new order every epoch ...
  assert len(set(sum(first, []))) == 8  # ... without repeats within one.
  same_seed = DeviceData(examples, batch_size=4, training=True, seed=3)
  assert epoch_batches(same_seed, 1) == second  # Position = f(seed, step): resumable.
  # Starting mid-epoch, and reading across epoch ends, gives what an
  # uninterrupted run sees.
  assert read_batches(data, 3, 1) == [second[1]]
  assert read_batches(data, 1, 3) == [first[1], *second]


def test_device_data_order_is_a_function_of_seed_and_epoch():
  """The graph's batches are those of `batches_from` (the order a tf.data pipeline feeds)."""
  examples = (np.arange(40, dtype=np.float32),)
  seed = tf.Variable(5, dtype=tf.int64)
  data = DeviceData(examples, batch_size=8, training=True, seed=seed)

  def own(first_epoch, epochs, seed_value):  # One order per epoch, as a tf.data pipeline draws them.
    batches = data.batches_from(first_epoch * data.steps_per_epoch, seed_value)
    return [batch[0].numpy().tolist() for batch in batches.take(epochs * data.steps_per_epoch)]

  assert read_batches(data, 0, 3 * data.steps_per_epoch) == own(0, 3, 5)
  assert epoch_batches(data, 3) == own(3, 1, 5)
  seed.assign(6)  # E.g. restored from a checkpoint: the graph reads the new seed.
  assert epoch_batches(data, 3) == own(3, 1, 6) != own(3, 1, 5)


def test_device_data_without_shuffle_keeps_the_order():
  data = DeviceData((np.arange(8, dtype=np.float32),), 4, training=True, shuffle=False)
  assert epoch_batches(data, 0) == epoch_batches(data, 1) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_device_data_evaluation_covers_every_example_once():
  data = DeviceData((np.arange(10, dtype=np.float32),), 4, training=False)
  assert data.steps_per_epoch == 3
  seen = data.fold(lambda state, batch: tf.concat([state, batch[0]], 0), tf.zeros([0]))
  assert seen.numpy().tolist() == list(range(10))
  assert data.take(3)[0].numpy().tolist() == [0, 1, 2]


def test_device_data_refuses_arrays_of_different_lengths():
  with pytest.raises(DataError, match=r'share their first dimension, got sizes \[3, 4\]'):
    DeviceData((np.zeros(3), np.zeros(4)), 2, training=True)
