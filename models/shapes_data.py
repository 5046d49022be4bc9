"""An embedded image data set: outlined shapes drawn with numpy, no download."""

from __future__ import annotations

import gin
import numpy as np

from gin_trainer.errors import ConfigError

SHAPES = ('circle', 'square', 'triangle', 'cross')
SPLITS = ('train', 'val')


def _distance_to_outline(shape: np.ndarray, dx: np.ndarray, dy: np.ndarray,
                         radius: np.ndarray) -> np.ndarray:
  """Per pixel, how far it is from each image's shape outline (in pixels)."""
  circle = np.abs(np.hypot(dx, dy) - radius)
  square = np.abs(np.maximum(np.abs(dx), np.abs(dy)) - radius)
  # A triangle (apex down in image rows): its largest edge function is 0 on the outline.
  edges = np.maximum(-dy - radius / 2,
                     np.maximum(0.866 * dx + 0.5 * dy, -0.866 * dx + 0.5 * dy) - radius / 2)
  triangle = np.abs(edges)
  # A plus sign: the distance to the nearer of its two bars, each as long as the radius.
  horizontal = np.hypot(np.maximum(np.abs(dx) - radius, 0), dy)
  vertical = np.hypot(dx, np.maximum(np.abs(dy) - radius, 0))
  cross = np.minimum(horizontal, vertical)
  choices = [circle, square, triangle, cross]
  return np.choose(shape, choices)


@gin.configurable(denylist=['split'])
def procedural_shapes(split: str,
                      num_train: int = 4000,
                      num_val: int = 1000,
                      image_size: int = 28,
                      seed: int = 0) -> np.ndarray:
  """Grey-scale images of one outlined shape each, the same for a given seed.

  Each image shows a circle, square, triangle or plus sign with a random
  position, size (radius 4 to 10 pixels) and stroke width (1 to 3 pixels),
  anti-aliased, values in [0, 1]: a data set a VAE visibly learns, made in
  well under a second.

  Args:
    split: 'train' or 'val'.
    num_train: Images in the train split.
    num_val: Images in the val split.
    image_size: Height and width in pixels.
    seed: Seed of everything drawn.

  Returns:
    float32 images of shape [n, image_size, image_size].
  """
  if split not in SPLITS:
    raise ConfigError(f'procedural_shapes has splits {SPLITS}, not {split!r}')
  rng = np.random.default_rng(seed)
  total = num_train + num_val
  column = lambda values: values[:, np.newaxis, np.newaxis]
  shape = column(rng.integers(len(SHAPES), size=total))
  radius = column(rng.uniform(4, 10, size=total))
  stroke = column(rng.uniform(1, 3, size=total))
  margin = radius + stroke
  center_x = column(rng.uniform(0, 1, size=total)) * (image_size - 2 * margin) + margin
  center_y = column(rng.uniform(0, 1, size=total)) * (image_size - 2 * margin) + margin
  pixels = np.arange(image_size) + 0.5
  dx = pixels[np.newaxis, np.newaxis, :] - center_x
  dy = pixels[np.newaxis, :, np.newaxis] - center_y
  distance = _distance_to_outline(shape, dx, dy, radius)
  images = np.clip(stroke / 2 - distance + 0.5, 0.0, 1.0)
  part = slice(0, num_train) if split == 'train' else slice(num_train, total)
  return images[part].astype(np.float32)
