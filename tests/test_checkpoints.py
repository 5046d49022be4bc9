"""Checkpoints on their own: what `restore_latest` picks, refuses or skips, and when saves are due."""

import glob
import logging
import os
import time

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from gin_trainer.errors import CheckpointMismatchError, ConfigError
from gin_trainer.run.checkpoints import Checkpoints


def tracked(model_dir, checkpoints=None):
  """Checkpoints (by default, never due) tracking fresh variables (zeros).

  Returns:
    (checkpoints, weights, step).
  """
  checkpoints = checkpoints or Checkpoints(str(model_dir), None, every_n_seconds=None)
  weights = tf.Variable(tf.zeros([3]), name='weights')
  step = tf.Variable(0, dtype=tf.int64, name='step')
  checkpoints.track({'weights': weights, 'global_step': step})
  return checkpoints, weights, step


def save_at(checkpoints, weights, step, at):
  """Saves a checkpoint at step `at` with weights [at, at + 1, ...]; returns its weights."""
  values = np.arange(at, at + weights.shape[0], dtype=np.float32)
  weights.assign(values)
  step.assign(at)
  checkpoints.save(at)
  return values


def test_nothing_to_restore_in_a_new_model_dir(tmp_path):
  checkpoints, weights, step = tracked(tmp_path)
  assert checkpoints.restore_latest() is None and checkpoints.latest is None
  np.testing.assert_array_equal(weights.numpy(), [0, 0, 0])
  assert int(step.numpy()) == 0


def test_restores_the_newest_checkpoint(tmp_path):
  checkpoints, weights, step = tracked(tmp_path)
  save_at(checkpoints, weights, step, 5)
  newest = save_at(checkpoints, weights, step, 10)

  resumed, weights, step = tracked(tmp_path)
  path = resumed.restore_latest()
  assert os.path.basename(path) == 'ckpt-10'
  np.testing.assert_array_equal(weights.numpy(), newest)
  assert int(step.numpy()) == 10


@pytest.mark.parametrize('damaged', ['index', 'data-00000-of-00001'])
def test_a_truncated_newest_checkpoint_is_skipped_for_the_one_before(tmp_path, caplog, damaged):
  caplog.set_level(logging.WARNING)
  checkpoints, weights, step = tracked(tmp_path)
  older = save_at(checkpoints, weights, step, 5)
  save_at(checkpoints, weights, step, 10)
  path = os.path.join(tmp_path, 'checkpoints', f'ckpt-10.{damaged}')
  with open(path, 'r+b') as file:
    file.truncate(os.path.getsize(path) // 2)

  resumed, weights, step = tracked(tmp_path)
  assert os.path.basename(resumed.restore_latest()) == 'ckpt-5'
  np.testing.assert_array_equal(weights.numpy(), older)
  assert int(step.numpy()) == 5
  warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  assert any('ckpt-10 cannot be read' in message and 'the one before it' in message
             for message in warnings), warnings


def dense_model(units):
  """A model of one Dense layer named 'head' over 2 inputs."""
  model = keras.Sequential([keras.Input([2]), keras.layers.Dense(units, name='head')],
                           name='net')
  model.layers[0].kernel.assign(tf.fill([2, units], 7.0))
  return model


def test_a_checkpoint_of_another_model_is_refused_and_changes_nothing(tmp_path):
  checkpoints = Checkpoints(str(tmp_path), None, every_n_seconds=None)
  step = tf.Variable(5, dtype=tf.int64)
  checkpoints.track({'global_step': step}, model=dense_model(3))
  checkpoints.save(5)

  other = Checkpoints(str(tmp_path), None, every_n_seconds=None)
  wider = dense_model(4)
  extra = tf.Variable(1.0)
  step = tf.Variable(3, dtype=tf.int64)
  other.track({'global_step': step, 'bias': extra}, model=wider)
  with pytest.raises(CheckpointMismatchError) as raised:
    other.restore_latest()
  message = str(raised.value)
  assert 'ckpt-5' in message
  assert '3 difference(s)' in message
  # Model variables are named by position, with their paths beside them.
  assert 'model_variables/0 (net/head/kernel): shape (2, 3) in the checkpoint, (2, 4) now' in message
  assert 'model_variables/1 (net/head/bias): shape (3,) in the checkpoint, (4,) now' in message
  assert 'bias: in the configured run only' in message
  # Nothing was restored, not even the variables that would fit.
  np.testing.assert_array_equal(wider.layers[0].kernel.numpy(), np.full([2, 4], 7.0))
  assert int(step.numpy()) == 3


def test_saves_are_due_every_n_steps_or_epochs(tmp_path):
  by_steps = Checkpoints(str(tmp_path), None, every_n_steps=5, every_n_seconds=None)
  assert by_steps.period_in_steps() == 5
  assert [step for step in range(0, 21) if by_steps.is_due(step)] == [5, 10, 15, 20]
  by_epochs = Checkpoints(str(tmp_path), 7, every_n_epochs=2, every_n_seconds=None)
  assert by_epochs.period_in_steps() == 14
  assert [step for step in range(0, 43) if by_epochs.is_due(step)] == [14, 28, 42]
  never = Checkpoints(str(tmp_path), 7, every_n_seconds=None)
  assert never.period_in_steps() is None and not any(never.is_due(s) for s in range(50))


def test_a_save_is_due_once_every_n_seconds_have_passed(tmp_path):
  checkpoints, weights, step = tracked(tmp_path, Checkpoints(str(tmp_path), None,
                                                              every_n_seconds=0.2))
  assert not checkpoints.is_due(7)
  time.sleep(0.25)
  assert checkpoints.is_due(7)
  save_at(checkpoints, weights, step, 7)
  assert not checkpoints.is_due(8)  # The clock starts again at each save.


def test_saves_by_time_wait_50_times_the_last_save(tmp_path):
  checkpoints, weights, step = tracked(tmp_path, Checkpoints(str(tmp_path), None,
                                                              every_n_seconds=1e-6))
  began = time.monotonic()
  save_at(checkpoints, weights, step, 3)
  took = time.monotonic() - began
  assert not checkpoints.is_due(4)  # A save costs at most ~2% of the time between saves.
  time.sleep(50 * took + 0.01)
  assert checkpoints.is_due(4)


def test_gin_bindings_set_the_period_and_how_many_are_kept(tmp_path):
  gin.parse_config(['Checkpoints.every_n_steps = 4', 'Checkpoints.max_to_keep = 2',
                    'Checkpoints.every_n_seconds = None'])
  checkpoints, weights, step = tracked(tmp_path, Checkpoints(str(tmp_path), None))
  assert checkpoints.period_in_steps() == 4 and checkpoints.is_due(8)
  for at in (4, 8, 12):
    save_at(checkpoints, weights, step, at)
  kept = sorted(os.path.basename(path)
                for path in glob.glob(str(tmp_path / 'checkpoints' / '*.index')))
  assert kept == ['ckpt-12.index', 'ckpt-8.index']

  gin.parse_config(['Checkpoints.every_n_epochs = 1'])
  with pytest.raises(ConfigError, match='not both'):
    Checkpoints(str(tmp_path), 10)
