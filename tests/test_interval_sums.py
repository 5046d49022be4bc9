"""Interval means on the host: IntervalSums, SplitWriter's marks, and SummaryManager's points.

Points are read back from the event files with `read_scalars`, as TensorBoard would show them.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from gin_trainer.errors import ConfigError
from gin_trainer.summaries.event_files import read_scalars
from gin_trainer.summaries.interval_sums import IntervalSums
from gin_trainer.summaries.manager import SummaryManager
from gin_trainer.summaries.split_writer import SplitWriter
from gin_trainer.summaries import tags


def test_means_are_over_every_part_of_the_interval_then_start_afresh():
  sums = IntervalSums(['loss', 'mae'])
  sums.add([2.0, 1.0], steps=2, seconds=1.0)  # Two parts from two loops' calls.
  sums.add([4.5, 0.5], steps=3, seconds=0.5)
  assert sums.end() == pytest.approx({'loss': 6.5 / 5, 'mae': 1.5 / 5,
                                      tags.STEPS_PER_SECOND: 5 / 1.5})
  sums.add([1.0, 3.0], steps=4, seconds=2.0)
  assert sums.end() == pytest.approx({'loss': 0.25, 'mae': 0.75, tags.STEPS_PER_SECOND: 2.0})


def test_steps_per_second_is_nan_without_time():
  sums = IntervalSums(['loss'])
  sums.add([3.0], steps=3, seconds=0.0)
  means = sums.end()
  assert means['loss'] == 1.0 and math.isnan(means[tags.STEPS_PER_SECOND])


def test_interval_so_far_survives_a_checkpoint_round_trip(tmp_path):
  # Sums float32 would round (1e8 + 0.1): the resumed means must be exactly the same.
  parts = [([1e8 + 0.1, 0.3], 2, 0.7), ([0.2, 1e-3], 3, 0.6)]
  uninterrupted = IntervalSums(['a', 'b'])
  for part in parts:
    uninterrupted.add(*part)

  before = IntervalSums(['a', 'b'])
  before.add(*parts[0])
  before.save()
  path = tf.train.Checkpoint(**before.checkpoint_items()).write(str(tmp_path / 'ckpt'))
  before.add([5.0, 5.0], 1, 1.0)  # Added after the save: not in the checkpoint.

  after = IntervalSums(['a', 'b'])
  tf.train.Checkpoint(**after.checkpoint_items()).read(path).assert_consumed()
  assert after.restore(steps=2)
  after.add(*parts[1])
  assert after.end() == uninterrupted.end()

  # Other scalars (gradient statistics turned on), or another interval
  # length: the checkpoint still fits, and the interval starts afresh.
  for names, steps in ((['a', 'b', 'c'], 2), (['a', 'b'], 5)):
    other = IntervalSums(names)
    tf.train.Checkpoint(**other.checkpoint_items()).read(path).assert_consumed()
    assert not other.restore(steps=steps)
    # Empty: its point is the mean of what comes after the resume alone.
    other.add([6.0] * len(names), 3, 0.5)
    assert other.end() == {**{name: 2.0 for name in names}, tags.STEPS_PER_SECOND: 6.0}


def test_reopened_writer_writes_only_points_past_each_tags_mark(tmp_path):
  log_dir = str(tmp_path / 'train')
  first = SplitWriter(log_dir)
  for step in (1, 2, 3):
    first.scalars(step, {'loss': float(step)})
  first.flush()

  # A resumed run recomputes steps 2..5 (other values, to tell them apart) and
  # logs a tag the files lack.
  second = SplitWriter(log_dir)
  assert second.marks == {'loss': 3}
  for step in (2, 3, 4, 5):
    second.scalars(step, {'loss': 10.0 * step, 'learning_rate': 0.1 * step})
  second.flush()

  points = read_scalars(log_dir)
  assert points['loss'] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0), (5, 50.0)]
  assert [step for step, _ in points['learning_rate']] == [2, 3, 4, 5]
  np.testing.assert_allclose([value for _, value in points['learning_rate']],
                             [0.2, 0.3, 0.4, 0.5], rtol=1e-6)


def manager(model_dir, total_steps, **kwargs):
  summaries = SummaryManager(str(model_dir), kwargs.pop('steps_per_epoch', None), total_steps,
                             batch_size=8, log_progress=False, **kwargs)
  summaries.track(['loss'], ['loss'])
  summaries.open(['train', 'val'])
  return summaries


def test_parts_make_one_point_per_interval_and_a_last_partial_one(tmp_path):
  summaries = manager(tmp_path, total_steps=35, every_n_steps=10)
  # Loss sums of the parts ending at 10, 20, 25 (a loop's end) | 30, 35 (training's end).
  written = summaries.add_train([(10, [5.0]), (20, [3.0]), (25, [1.0])], 0.01, start_step=0)
  assert written['loss'] == pytest.approx(0.3)  # The last point the call wrote: step 20.
  assert summaries.add_train([(30, [1.5])], 0.01, start_step=25)['loss'] == pytest.approx(0.25)
  assert summaries.add_train([(32, [0.2])], 0.01, start_step=30) == {}
  summaries.add_train([(35, [0.4])], 0.01, start_step=32)
  summaries.flush()

  points = read_scalars(str(tmp_path / 'train'))
  assert [step for step, _ in points['loss']] == [10, 20, 30, 35]
  # The 25 part is carried into 30's interval; 35's covers steps 31..35.
  np.testing.assert_allclose([value for _, value in points['loss']],
                             [0.5, 0.3, (1.0 + 1.5) / 10, 0.6 / 5], rtol=1e-6)
  speeds = dict(points[tags.STEPS_PER_SECOND])
  np.testing.assert_allclose([speeds[step] for step in (10, 20, 30, 35)], 100.0, rtol=1e-5)
  np.testing.assert_allclose([value for _, value in points[tags.EXAMPLES_PER_SECOND]], 800.0,
                             rtol=1e-5)


def test_epoch_interval_writes_at_epoch_numbers(tmp_path):
  summaries = manager(tmp_path, total_steps=15, steps_per_epoch=5, every_n_epochs=1)
  summaries.choose_x_axis(schedule_in_epochs=True)
  summaries.add_train([(5, [1.0]), (10, [2.0])], 0.01, start_step=0)
  summaries.add_val(10, {'loss': 0.7})
  summaries.add_train([(15, [3.0])], 0.01, start_step=10)
  summaries.flush()

  train = read_scalars(str(tmp_path / 'train'))['loss']
  assert [step for step, _ in train] == [1, 2, 3]
  np.testing.assert_allclose([value for _, value in train], [0.2, 0.4, 0.6], rtol=1e-6)
  assert read_scalars(str(tmp_path / 'val'))['loss'] == [(2, pytest.approx(0.7))]


def test_step_axis_unless_the_schedule_is_in_epochs(tmp_path):
  summaries = manager(tmp_path / 'auto', total_steps=10, steps_per_epoch=5, every_n_epochs=1)
  summaries.choose_x_axis(schedule_in_epochs=False)
  summaries.add_train([(5, [1.0]), (10, [2.0])], 0.01, start_step=0)
  summaries.flush()
  assert [step for step, _ in read_scalars(str(tmp_path / 'auto' / 'train'))['loss']] == [5, 10]
  with pytest.raises(ConfigError, match="x_axis='epoch' needs every point on an epoch"):
    manager(tmp_path / 'epoch', total_steps=10, steps_per_epoch=5, every_n_epochs=1,
            x_axis='epoch').choose_x_axis(schedule_in_epochs=False)
