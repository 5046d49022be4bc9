"""Images from a local .npz file, such as the `mnist.npz` Keras caches."""

from __future__ import annotations

import os
import zipfile
from typing import Dict, Optional

import gin
import numpy as np

from gin_trainer.errors import DataError

KERAS_MNIST = os.path.join(os.path.expanduser('~'), '.keras', 'datasets', 'mnist.npz')
# mnist.npz names its splits x_train / x_test; validate on the test images.
MNIST_KEYS = {'train': 'x_train', 'val': 'x_test'}


@gin.configurable(denylist=['split'])
def npz_images(split: str,
               path: str = KERAS_MNIST,
               keys: Optional[Dict[str, str]] = None,
               scale: Optional[float] = None) -> np.ndarray:
  """One split of images from a local .npz file; never downloads.

  Args:
    split: The split to load, e.g. 'train' or 'val'.
    path: The .npz file; default: where Keras caches MNIST.
    keys: Which array of the file holds each split (default: MNIST's names,
      `{'train': 'x_train', 'val': 'x_test'}`).
    scale: Divide pixel values by this; default: 255 for integer images,
      1 for float images.

  Returns:
    float32 images, [n, height, width] or [n, height, width, channels].

  Raises:
    DataError: `path` does not exist (the message says how to get MNIST or
      bind another file), cannot be read as an .npz, has no array for
      `split`, or that array is not numbers.
  """
  if not os.path.isfile(path):
    raise DataError(
        f'npz_images: no file at {path!r}. Bind npz_images.path to a local .npz of images '
        "(for MNIST: the mnist.npz that keras.datasets.mnist.load_data() caches in "
        '~/.keras/datasets/); nothing is downloaded at run time.')
  keys = keys or MNIST_KEYS
  try:
    with np.load(path) as arrays:
      key = keys.get(split)
      if key not in arrays:
        raise DataError(f'npz_images: {path!r} has no array {key!r} for split {split!r}; it has '
                        f'{sorted(arrays.files)} (bind npz_images.keys)')
      images = arrays[key]
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
    raise DataError(f'npz_images: {path!r} cannot be read as an .npz file ({error}); bind '
                    'npz_images.path to a file written by numpy.savez') from None
  if not np.issubdtype(images.dtype, np.number):
    raise DataError(f'npz_images: array {key!r} of {path!r} holds {images.dtype}, not numbers; '
                    'bind npz_images.keys to an array of images')
  if scale is None:
    scale = 255.0 if np.issubdtype(images.dtype, np.integer) else 1.0
  return (images / scale).astype(np.float32)
