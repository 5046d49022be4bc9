"""The host-serialized points are the events `tf.summary.scalar` writes, byte for byte."""

import glob
import math

import tensorflow as tf

from trainer.event_file import EventFile
from trainer.event_files import read_scalars
from trainer.point_protos import PointEncoder

TAGS = ['loss', 'gradients/variance/dense_1/kernel:0', 'été']
# float32 rounding, signed zero, NaN, infinities, and a float64 out of float32's range.
VALUES = [[0.1, -0.0, float('nan')], [float('inf'), 1e300, -1e-50], [3.0, -2.5e38, 7.25]]
# Steps past one varint byte; wall times as time.time() gives them.
STEPS = [0, 300, 2**40]
WALL_TIMES = [1795980000.123456, 1795980001.5, 1795980002.0]


def events_in(log_dir):
  """The events of the one event file in `log_dir` that hold a summary."""
  path, = glob.glob(str(log_dir / 'events.out.tfevents.*'))
  return [event for event in tf.compat.v1.train.summary_iterator(path) if event.summary.value]


def write_events(log_dir, events):
  file = EventFile(str(log_dir))
  for event in events:
    file.write(event)
  file.close()


def test_encoded_points_equal_what_tf_summary_scalar_writes(tmp_path):
  encoder = PointEncoder(TAGS)
  reference = tf.summary.create_file_writer(str(tmp_path / 'reference'))
  for step, values in zip(STEPS, VALUES):
    with reference.as_default(step=step):
      for tag, value in zip(TAGS, values):
        # From a vector: eager scalar constants are cached by value, and -0.0 == 0.0.
        value = tf.reshape(tf.constant([value], tf.float64), [])
        tf.summary.scalar(tag, tf.cast(value, tf.float32))
  reference.flush()
  # Every tag, by default and by name.
  emits = [None, [True] * len(TAGS), None]
  write_events(tmp_path / 'encoded', [encoder.event(step, wall_time, values, emit)
                                       for step, wall_time, values, emit
                                       in zip(STEPS, WALL_TIMES, VALUES, emits)])

  # One event per scalar there, one per point here: the same values in the same order.
  expected = [(step, b''.join(event.summary.SerializeToString()
                              for event in events_in(tmp_path / 'reference')
                              if event.step == step)) for step in STEPS]
  encoded = events_in(tmp_path / 'encoded')
  assert [(event.step, event.summary.SerializeToString()) for event in encoded] == expected
  assert [event.wall_time for event in encoded] == WALL_TIMES
  scalars = read_scalars(tmp_path / 'encoded')
  assert [step for step, _ in scalars['loss']] == STEPS
  assert math.isinf(scalars[TAGS[1]][1][1])  # 1e300 as float32, as tf.cast makes it.


def test_a_point_holds_only_the_tags_it_emits(tmp_path):
  encoder = PointEncoder(TAGS)
  write_events(tmp_path, [encoder.event(7, WALL_TIMES[0], [1.0, 2.0, 3.0], [False, True, False]),
                          encoder.event(8, WALL_TIMES[1], [4.0, 1e300, 6.0], [True, False, True]),
                          encoder.event(9, WALL_TIMES[2], [7.0, 8.0, 9.0])])
  assert read_scalars(tmp_path) == {TAGS[0]: [(8, 4.0), (9, 7.0)], TAGS[1]: [(7, 2.0), (9, 8.0)],
                                    TAGS[2]: [(8, 6.0), (9, 9.0)]}
