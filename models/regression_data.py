"""An embedded synthetic regression data set: nothing to download."""

from __future__ import annotations

from typing import Tuple

import gin
import numpy as np

from gin_trainer.errors import ConfigError

SPLITS = ('train', 'val', 'test')


@gin.configurable(denylist=['split'])
def synthetic_regression(split: str,
                         num_train: int = 1000,
                         num_val: int = 200,
                         num_test: int = 200,
                         num_features: int = 5,
                         noise_std: float = 0.1,
                         pure_noise: bool = False,
                         seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
  """Features and targets of one split, the same for a given seed.

  Features are uniform in [0, 1), as in the tutorial. By default the targets
  are learnable, y = x.w + b + noise, with w and b drawn once from the seed,
  so the loss curves show learning. With `pure_noise` the targets are
  uniform noise independent of x, the tutorial's setting, where no model can
  beat predicting the mean.

  Args:
    split: 'train', 'val' or 'test'.
    num_train: Examples in the train split.
    num_val: Examples in the val split.
    num_test: Examples in the test split (drawn apart: train and val do
      not depend on it).
    num_features: Features per example.
    noise_std: Standard deviation of the Gaussian noise on learnable targets.
    pure_noise: Make the targets pure noise.
    seed: Seed of everything drawn; independent of the Trainer's seed, so
      a training-seed sweep sees the same data.

  Returns:
    `(x, y)`: float32 arrays of shapes [n, num_features] and [n, 1].
  """
  if split not in SPLITS:
    raise ConfigError(f'synthetic_regression has splits {SPLITS}, not {split!r}')
  rng = np.random.default_rng(seed)
  total = num_train + num_val
  x = rng.random((total, num_features))
  if pure_noise:
    y = rng.random((total, 1))
  else:
    weights = rng.normal(size=(num_features, 1))
    bias = rng.normal()
    y = x @ weights + bias + rng.normal(scale=noise_std, size=(total, 1))
  if split == 'test':
    test_rng = np.random.default_rng([seed, 1])
    x = test_rng.random((num_test, num_features))
    y = (test_rng.random((num_test, 1)) if pure_noise else
         x @ weights + bias + test_rng.normal(scale=noise_std, size=(num_test, 1)))
    return x.astype(np.float32), y.astype(np.float32)
  part = slice(0, num_train) if split == 'train' else slice(num_train, total)
  return x[part].astype(np.float32), y[part].astype(np.float32)
