"""EventFile: points and staged tf.summary calls in one file, as TensorBoard reads it."""

import glob

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from trainer.event_file import EventFile
from trainer.event_files import read_image_sizes, read_scalars, read_texts
from trainer.point_protos import PointEncoder


def test_points_and_staged_summaries_share_one_file_in_order(tmp_path):
  encoder = PointEncoder(['loss'])
  file = EventFile(str(tmp_path))
  file.write(encoder.event(1, 1795980000.0, [0.5]))
  with file.summaries_at(2):
    tf.summary.text('config', 'lr = 0.1')
    tf.summary.image('samples', np.zeros([1, 4, 6, 1], np.float32))
  file.write(encoder.event(2, 1795980001.0, [0.25]))
  file.flush()

  paths = glob.glob(str(tmp_path / 'events.out.tfevents.*'))
  assert len(paths) == 1
  events = list(tf.compat.v1.train.summary_iterator(paths[0]))
  assert events[0].file_version == 'brain.Event:2'
  assert [(event.step, [value.tag for value in event.summary.value]) for event in events[1:]] == [
      (1, ['loss']), (2, ['config']), (2, ['samples']), (2, ['loss'])]
  assert read_scalars(tmp_path) == {'loss': [(1, 0.5), (2, 0.25)]}
  assert read_texts(tmp_path) == {'config': [(2, 'lr = 0.1')]}
  assert read_image_sizes(tmp_path) == {'samples': [(2, 6, 4)]}  # width, height


def test_tensorboard_reads_everything_written_after_a_second_file(tmp_path):
  """TensorBoard's Python loader reads a directory's newest file only: nothing may go to an older one."""
  encoder = PointEncoder(['loss'])
  first = EventFile(str(tmp_path))
  first.write(encoder.event(1, 1795980000.0, [1.0]))
  first.close()
  second = EventFile(str(tmp_path))  # A resumed run.
  for step in (2, 3):
    second.write(encoder.event(step, 1795980000.0 + step, [1.0 / step]))
    with second.summaries_at(step):
      tf.summary.image('samples', np.zeros([1, 4, 4, 1], np.float32))
  second.flush()

  accumulator = event_accumulator.EventAccumulator(
      str(tmp_path), size_guidance={event_accumulator.TENSORS: 0})
  accumulator.Reload()
  assert [event.step for event in accumulator.Tensors('loss')] == [1, 2, 3]
  assert [event.step for event in accumulator.Tensors('samples')] == [2, 3]
