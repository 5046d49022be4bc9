"""The embedded regression data and the shared input pipeline."""

import numpy as np
import pytest

from models.regression_data import synthetic_regression
from trainer.data import input_pipeline, num_examples


def test_splits_have_the_tutorial_shapes_and_are_reproducible():
  x, y = synthetic_regression('train')
  assert x.shape == (1000, 5) and y.shape == (1000, 1) and x.dtype == np.float32
  x_val, _ = synthetic_regression('val')
  assert x_val.shape == (200, 5)
  np.testing.assert_array_equal(x, synthetic_regression('train')[0])
  assert not np.array_equal(x[:200], x_val)


def test_learnable_targets_are_linear_in_the_features_and_noise_is_not():
  for pure_noise, fits in ((False, True), (True, False)):
    x, y = synthetic_regression('train', pure_noise=pure_noise)
    design = np.hstack([x, np.ones((len(x), 1))])
    residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    assert (residual.var() < 0.02) == fits, pure_noise  # Noise std 0.1: variance 0.01.


def test_unknown_split_is_refused():
  with pytest.raises(ValueError, match="not 'test'"):
    synthetic_regression('test')


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
