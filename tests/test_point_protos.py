"""The host-serialized points are the events `tf.summary.scalar` writes, byte for byte."""

import glob
import math

import tensorflow as tf

from trainer.event_files import read_scalars
from trainer.point_protos import PointEncoder

TAGS = ['loss', 'gradients/variance/dense_1/kernel:0', 'été']
# float32 rounding, signed zero, NaN, infinities, and a float64 out of float32's range.
VALUES = [[0.1, -0.0, float('nan')], [float('inf'), 1e300, -1e-50], [3.0, -2.5e38, 7.25]]


def summaries_in(log_dir):
  """(step, serialized Summary) of every event that holds one."""
  path, = glob.glob(str(log_dir / 'events.out.tfevents.*'))
  return [(event.step, event.summary.SerializeToString())
          for event in tf.compat.v1.train.summary_iterator(path) if event.summary.value]


def test_encoded_points_equal_what_tf_summary_scalar_writes(tmp_path):
  encoder = PointEncoder(TAGS)
  reference = tf.summary.create_file_writer(str(tmp_path / 'reference'))
  encoded = tf.summary.create_file_writer(str(tmp_path / 'encoded'))
  for step, values in enumerate(VALUES):
    with reference.as_default(step=step):
      for tag, value in zip(TAGS, values):
        # From a vector: eager scalar constants are cached by value, and -0.0 == 0.0.
        value = tf.reshape(tf.constant([value], tf.float64), [])
        tf.summary.scalar(tag, tf.cast(value, tf.float32))
    with encoded.as_default(step=step):
      tf.summary.experimental.write_raw_pb(encoder.encode(values, [True] * len(TAGS)))
  reference.flush()
  encoded.flush()

  # One event per scalar there, one per point here: the same values in the same order.
  expected = [(step, b''.join(summary for s, summary in summaries_in(tmp_path / 'reference')
                              if s == step)) for step in range(len(VALUES))]
  assert summaries_in(tmp_path / 'encoded') == expected
  scalars = read_scalars(tmp_path / 'encoded')
  assert [step for step, _ in scalars['loss']] == [0, 1, 2]
  assert math.isinf(scalars[TAGS[1]][1][1])  # 1e300 as float32, as tf.cast makes it.


def test_a_point_holds_only_the_tags_it_emits(tmp_path):
  encoder = PointEncoder(TAGS)
  assert encoder.encode([1.0, 2.0, 3.0], [False] * 3) == b''
  writer = tf.summary.create_file_writer(str(tmp_path))
  with writer.as_default(step=7):
    tf.summary.experimental.write_raw_pb(encoder.encode([1.0, 2.0, 3.0], [False, True, False]))
  writer.flush()
  assert read_scalars(tmp_path) == {TAGS[1]: [(7, 2.0)]}
