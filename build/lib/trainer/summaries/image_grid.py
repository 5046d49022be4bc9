"""Tiling a batch of images into one image, for image summaries."""

from __future__ import annotations

import tensorflow as tf


def image_grid(images: tf.Tensor, rows: int) -> tf.Tensor:
  """Tiles `images` row by row into a single image.

  Args:
    images: [n, height, width] or [n, height, width, channels] with values
      in [0, 1]; n must be a multiple of `rows`.
    rows: Rows of the grid; each row holds n // rows images.

  Returns:
    A [1, rows * height, (n // rows) * width, channels] batch of one image,
    as `tf.summary.image` takes it.
  """
  if images.shape.rank == 3:
    images = images[..., tf.newaxis]
  n, height, width, channels = images.shape
  if n % rows:
    raise ValueError(f'{n} images do not fill {rows} rows evenly')
  columns = n // rows
  grid = tf.reshape(images, [rows, columns, height, width, channels])
  grid = tf.transpose(grid, [0, 2, 1, 3, 4])  # rows, height, columns, width, channels
  return tf.reshape(grid, [1, rows * height, columns * width, channels])
