"""An image workload read from TFRecord shards, written as a gin-trainer user would.

`images.gin` (next to this file) imports this module with gin's `import`
line, so `gin-trainer --gin_file=benchmarks/images.gin` finds it without
`PYTHONPATH`; that import names it `images`, so it imports nothing from
`benchmarks`. The end-to-end benchmark's peers import it as
`benchmarks.images`.

    python -m benchmarks.images DIRECTORY   # writes the shards (seeded)
"""

from __future__ import annotations

import glob
import os
from typing import Sequence, Tuple

import gin
import keras
import numpy as np
import tensorflow as tf
from absl import app

from gin_trainer import keras_configurable

IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
# Split -> (shards, examples per shard).
SHARDS = {'train': (8, 1250), 'val': (2, 1000)}
SEED = 0
_FEATURES = {'image': tf.io.FixedLenFeature([], tf.string),
             'label': tf.io.FixedLenFeature([], tf.int64)}


def make_images(rng: np.random.Generator, count: int) -> Tuple[np.ndarray, np.ndarray]:
  """`count` uint8 images and their int64 labels: learnable, not at a glance.

  Classes come in pairs of one colour; a stripe pattern (angle and
  frequency) tells the two apart. Every image has its own stripe phase and
  strong pixel noise.
  """
  labels = rng.integers(NUM_CLASSES, size=count)
  colours = np.random.default_rng(SEED).uniform(0.35, 0.65, size=(NUM_CLASSES // 2, 3))
  angles = np.arange(NUM_CLASSES) * np.pi / NUM_CLASSES
  frequencies = 0.3 + 0.05 * np.arange(NUM_CLASSES)
  rows, columns = np.mgrid[:IMAGE_SHAPE[0], :IMAGE_SHAPE[1]]
  along = (np.cos(angles[labels])[:, None, None] * rows
           + np.sin(angles[labels])[:, None, None] * columns)
  phase = rng.uniform(0, 2 * np.pi, size=(count, 1, 1))
  stripes = np.sin(frequencies[labels][:, None, None] * along + phase)[..., None]
  images = (colours[labels // 2][:, None, None, :] + 0.2 * stripes
            + rng.normal(scale=0.25, size=(count, *IMAGE_SHAPE)))
  return np.clip(images * 255, 0, 255).astype(np.uint8), labels.astype(np.int64)


def write_tfrecords(directory: str) -> None:
  """Writes every split's shards into `directory`, `{split}-{index}-of-{count}.tfrecord`."""
  os.makedirs(directory, exist_ok=True)
  for split_index, (split, (shards, per_shard)) in enumerate(SHARDS.items()):
    for shard in range(shards):
      images, labels = make_images(np.random.default_rng([SEED, split_index, shard]), per_shard)
      path = os.path.join(directory, f'{split}-{shard:05d}-of-{shards:05d}.tfrecord')
      with tf.io.TFRecordWriter(path) as writer:
        for image, label in zip(images, labels):
          writer.write(tf.train.Example(features=tf.train.Features(feature={
              'image': tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
              'label': tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
          })).SerializeToString())


def parse(record: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """One serialized example -> (float32 image in [0, 1], int64 label)."""
  example = tf.io.parse_single_example(record, _FEATURES)
  image = tf.reshape(tf.io.decode_raw(example['image'], tf.uint8), IMAGE_SHAPE)
  return tf.cast(image, tf.float32) / 255.0, example['label']


@gin.configurable(denylist=['split'])
def tfrecord_images(split: str, directory: str = gin.REQUIRED) -> tf.data.Dataset:
  """The unbatched examples of one split, read from its shards in `directory`.

  Its size is declared (`assert_cardinality`): a TFRecord data set's is
  unknown, and gin-trainer needs it to count epochs (else it asks for
  `Trainer.steps_per_epoch`), as Keras does to know an epoch before its end.
  """
  files = sorted(glob.glob(os.path.join(directory, f'{split}-*.tfrecord')))
  if not files:
    raise FileNotFoundError(f'no {split}-*.tfrecord shards in {directory}')
  shards, per_shard = SHARDS[split]
  return tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE).map(
      parse, num_parallel_calls=tf.data.AUTOTUNE).apply(
          tf.data.experimental.assert_cardinality(shards * per_shard))


@keras_configurable
class ConvNet(keras.Model):
  """Conv2D-MaxPool blocks, then a Dense layer of logits.

  Args:
    filters: Filters of each 3x3 convolution (ReLU), each followed by 2x2 max pooling.
    num_classes: Logits per example.
  """

  def __init__(self, filters: Sequence[int] = (32, 64), num_classes: int = NUM_CLASSES,
               **kwargs):
    super().__init__(**kwargs)
    self.blocks = [(keras.layers.Conv2D(count, 3, activation='relu'), keras.layers.MaxPooling2D())
                   for count in filters]
    self.flatten = keras.layers.Flatten()
    self.logits = keras.layers.Dense(num_classes)

  def call(self, images, training=False):
    for convolution, pooling in self.blocks:
      images = pooling(convolution(images))
    return self.logits(self.flatten(images))


def main(argv: Sequence[str]) -> None:
  if len(argv) != 2:
    raise app.UsageError('usage: python -m benchmarks.images DIRECTORY')
  write_tfrecords(argv[1])


if __name__ == '__main__':
  app.run(main)
