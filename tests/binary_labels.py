"""A binary classification data builder for the Keras-metric tests (gin imports it in main.py)."""

import gin
import numpy as np

EXAMPLES = 1024  # 32 steps of 32 per epoch.


@gin.configurable
def binary_labels(split):
  """Four features; the label is whether a noisy linear score is positive."""
  rng = np.random.default_rng({'train': 0, 'val': 1}[split])
  x = rng.normal(size=(EXAMPLES, 4)).astype(np.float32)
  y = (x @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(size=EXAMPLES) > 0).astype(np.float32)
  return x, y[:, np.newaxis]
