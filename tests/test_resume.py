"""Kill it anywhere, rerun the same command, lose nothing: checkpoints, resume and faults."""

import glob
import logging
import os
import re
import shutil
import signal
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from tests.conftest import final_state, logged_points, run_main, start_and_signal, train_regression
from gin_trainer.summaries.event_files import read_scalars
from gin_trainer.run.model_dir_lock import ModelDirLock

# A VAE slow enough (~200 steps/s here) to be killed mid-run, with summaries,
# evaluations and checkpoints at intervals that do not divide each other. It
# keeps the best checkpoint and stops early: watching the val loss for a
# maximum, the first evaluation (step 70) stays the best, and the run stops
# after 7 more (step 560), so kills land before, between and after saves of both.
VAE_RUN = ['--gin_file=vae.gin', '--gin_param=procedural_shapes.num_train=1024',
           '--gin_param=procedural_shapes.num_val=128', '--gin_param=Trainer.batch_size=64',
           '--gin_param=Trainer.train_epochs=None', '--gin_param=Trainer.train_steps=600',
           '--gin_param=SummaryManager.every_n_epochs=None',
           '--gin_param=SummaryManager.every_n_steps=20',
           '--gin_param=Trainer.eval_every_n_epochs=None', '--gin_param=Trainer.eval_every_n_steps=70',
           '--gin_param=Checkpoints.every_n_steps=45', '--gin_param=Trainer.steps_per_loop=10',
           "--gin_param=BestCheckpoint.monitor='loss'", "--gin_param=BestCheckpoint.mode='max'",
           '--gin_param=BestCheckpoint.patience=7']
STOPS_EARLY_AT = 560


def vae_args(model_dir):
  return [*VAE_RUN, f"--gin_param=Trainer.model_dir='{model_dir}'"]


def assert_same_run(resumed_dir, baseline_dir):
  """Bitwise-equal final and best checkpoints and identical logged points, timings aside."""
  kept_best = (baseline_dir / 'checkpoints' / 'best').exists()
  for checkpoints in ['checkpoints'] + (['checkpoints/best'] if kept_best else []):
    name, state = final_state(resumed_dir, checkpoints)
    baseline_name, baseline_state = final_state(baseline_dir, checkpoints)
    assert name == baseline_name
    assert state.keys() == baseline_state.keys()
    for key, value in state.items():
      np.testing.assert_array_equal(value, baseline_state[key], err_msg=key)
  assert logged_points(resumed_dir) == logged_points(baseline_dir)


def tensorboard_steps(run_dir):
  """Per scalar tag, the steps TensorBoard's own event loader reads."""
  accumulator = event_accumulator.EventAccumulator(
      str(run_dir), size_guidance={event_accumulator.TENSORS: 0})
  accumulator.Reload()
  return {tag: [event.step for event in accumulator.Tensors(tag)]
          for tag in accumulator.Tags()['tensors']}


@pytest.fixture(scope='module')
def baseline(tmp_path_factory):
  model_dir = tmp_path_factory.mktemp('uninterrupted')
  result = run_main(vae_args(model_dir))
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'Stopping early at step {STOPS_EARLY_AT}: no improvement of val loss in 7' in result.stderr
  assert 'the best, val loss' in result.stderr and 'at step 70, is in' in result.stderr
  return model_dir


def test_killed_and_stopped_runs_resume_to_equal_an_uninterrupted_run(baseline, tmp_path):
  # SIGKILL, then SIGTERM (a clean stop) in the resumed run: each rerun continues
  # the same run.
  returncode, _ = start_and_signal(vae_args(tmp_path), signal.SIGKILL, after_step=128)
  assert returncode == -signal.SIGKILL, 'the run ended before it could be killed'

  returncode, stderr = start_and_signal(vae_args(tmp_path), signal.SIGTERM, after_step=250)
  assert returncode == 128 + signal.SIGTERM, stderr[-3000:]
  stopped = re.search(r'stopped by SIGTERM at step (\d+); saved (\S+)\. Rerun', stderr)
  assert stopped, stderr[-3000:]
  step = int(stopped.group(1))
  assert 250 <= step < STOPS_EARLY_AT
  assert tf.train.latest_checkpoint(str(tmp_path / 'checkpoints')).endswith(f'ckpt-{step}')

  result = run_main(vae_args(tmp_path))
  assert result.returncode == 0, result.stderr[-3000:]
  assert re.search(r'Resumed at step \d+, epoch [\d.]+ from .*ckpt-\d+', result.stderr)
  assert f'Stopping early at step {STOPS_EARLY_AT}' in result.stderr  # Its count was restored.
  assert_same_run(tmp_path, baseline)
  # What TensorBoard reads: strictly increasing steps, no duplicates, as uninterrupted.
  for split in ('train', 'val'):
    steps = tensorboard_steps(tmp_path / split)
    assert steps == tensorboard_steps(baseline / split)
    for tag, tag_steps in steps.items():
      assert all(a < b for a, b in zip(tag_steps, tag_steps[1:])), (split, tag, tag_steps)


def test_a_run_stopped_early_stays_stopped(tmp_path):
  # Watching the val loss for a maximum: epoch 1 stays the best, and 2 more evaluations stop it.
  bindings = ["BestCheckpoint.monitor = 'loss'", "BestCheckpoint.mode = 'max'",
              'BestCheckpoint.patience = 2']
  run = train_regression(tmp_path, *bindings)
  assert int(run.global_step.numpy()) == 3 * 31
  assert tf.train.latest_checkpoint(str(tmp_path / 'checkpoints' / 'best')).endswith('ckpt-31')
  rerun = train_regression(tmp_path, *bindings)  # Nothing to do: it stopped, for good.
  assert int(rerun.global_step.numpy()) == 3 * 31


def rewind(model_dir, step):
  """Leaves only the checkpoints up to `step`, as if the run had died right after it."""
  directory = os.path.join(model_dir, 'checkpoints')
  state = tf.train.get_checkpoint_state(directory)
  kept = [p for p in state.all_model_checkpoint_paths if int(p.rsplit('-', 1)[1]) <= step]
  for path in state.all_model_checkpoint_paths:
    if path not in kept:
      for file in tf.io.gfile.glob(path + '.*'):
        os.remove(file)
  tf.compat.v1.train.update_checkpoint_state(  # Listed without times, TF would drop them.
      directory, kept[-1], all_model_checkpoint_paths=kept,
      all_model_checkpoint_timestamps=[time.time()] * len(kept))
  # What a resumed run reads: the rewound list.
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(), directory, max_to_keep=None)
  assert manager.checkpoints == kept


@pytest.mark.parametrize('data_on_device', [True, False])
def test_mid_epoch_resume_continues_with_the_exact_next_batch(tmp_path, data_on_device):
  # 31 steps per epoch; checkpoints at 20, 40 and 60 fall mid-epoch and mid-interval.
  bindings = ['Trainer.train_epochs = None', 'Trainer.train_steps = 62',
              'Checkpoints.every_n_steps = 20', 'Checkpoints.max_to_keep = 5',
              f'Trainer.data_on_device = {data_on_device}']
  train_regression(tmp_path / 'uninterrupted', *bindings)
  shutil.copytree(tmp_path / 'uninterrupted', tmp_path / 'resumed')
  rewind(tmp_path / 'resumed', 40)  # Event files keep the points past step 40.
  train_regression(tmp_path / 'resumed', *bindings)
  assert_same_run(tmp_path / 'resumed', tmp_path / 'uninterrupted')


def test_nan_stops_naming_step_and_tag_and_keeps_the_last_good_checkpoint(tmp_path):
  # From step 31 on, a learning rate of 1e6 makes the loss overflow within a few steps.
  result = run_main(['--gin_file=regression.gin', f"--gin_param=Trainer.model_dir='{tmp_path}'",
                     '--gin_param=Checkpoints.every_n_steps=10',
                     '--gin_param=adam.learning_rate=@piecewise_constant_decay()',
                     '--gin_param=piecewise_constant_decay.boundaries=[30]',
                     '--gin_param=piecewise_constant_decay.values=[1e-3, 1e6]'])
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  error = re.search(r'error: loss is (nan|inf|-inf) at step (\d+); stopped without saving it\. '
                    r'The last good checkpoint is (\S+)\.', result.stderr)
  assert error, result.stderr[-2000:]
  bad_step, last_good = int(error.group(2)), error.group(3)
  assert bad_step > 30
  assert last_good == tf.train.latest_checkpoint(str(tmp_path / 'checkpoints'))
  assert int(last_good.rsplit('-', 1)[1]) < bad_step
  reader = tf.train.load_checkpoint(last_good)
  for key, _ in tf.train.list_variables(last_good):
    value = reader.get_tensor(key)
    if np.issubdtype(np.asarray(value).dtype, np.floating):
      assert np.all(np.isfinite(value)), key


def keep_events(log_dir, keep):
  """Rewrites each event file of `log_dir` with the summary values `keep(step, tag)` accepts."""
  for path in glob.glob(os.path.join(log_dir, 'events.out.tfevents.*')):
    events = [tf.compat.v1.Event.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    with tf.io.TFRecordWriter(path) as writer:
      for event in events:
        if event.HasField('summary'):
          kept = [value for value in event.summary.value if keep(event.step, value.tag)]
          if not kept:
            continue
          del event.summary.value[:]
          event.summary.value.extend(kept)
        writer.write(event.SerializeToString())


def resume_messages(caplog):
  """What the runs logged through absl so far (INFO and up)."""
  return '\n'.join(record.getMessage() for record in caplog.records if record.name == 'absl')


def test_a_point_left_partly_on_disk_gets_its_missing_tags_once(tmp_path, caplog):
  caplog.set_level(logging.INFO, logger='absl')
  bindings = ['Trainer.train_epochs = None', 'Trainer.train_steps = 40',
              'SummaryManager.every_n_epochs = None', 'SummaryManager.every_n_steps = 10',
              'Trainer.eval_every_n_epochs = None', 'Trainer.eval_every_n_steps = 10',
              'Checkpoints.every_n_steps = 20']
  train_regression(tmp_path, *bindings)
  uninterrupted = logged_points(tmp_path)
  # As a run killed while flushing step 30 leaves it: some tags of that point
  # on disk, nothing after it, and the checkpoint of step 20 the latest.
  for split, tags_of_30 in (('train', {'loss'}), ('val', {'mae'})):
    keep_events(tmp_path / split, lambda step, tag: step < 30 or (step == 30 and tag in tags_of_30))
  checkpoints = tmp_path / 'checkpoints'
  for path in checkpoints.glob('ckpt-40*'):
    path.unlink()
  tf.compat.v1.train.update_checkpoint_state(str(checkpoints), 'ckpt-20', ['ckpt-20'],
                                             all_model_checkpoint_timestamps=[time.time()])
  caplog.clear()
  train_regression(tmp_path, *bindings)
  assert 'Resumed at step 20' in resume_messages(caplog), resume_messages(caplog)[-3000:]
  assert logged_points(tmp_path) == uninterrupted
  for split in ('train', 'val'):  # Each scalar once per step, as TensorBoard reads them.
    steps = tensorboard_steps(tmp_path / split)
    scalars = read_scalars(tmp_path / split)
    assert scalars and all(steps[tag] == [10, 20, 30, 40] for tag in scalars), steps


def test_a_truncated_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
  caplog.set_level(logging.INFO, logger='absl')
  train_regression(tmp_path, 'Checkpoints.every_n_epochs = 1', 'Trainer.train_epochs = 3')
  [data] = (tmp_path / 'checkpoints').glob('ckpt-93.data-*')
  data.write_bytes(data.read_bytes()[:len(data.read_bytes()) // 2])
  caplog.clear()
  run = train_regression(tmp_path, 'Checkpoints.every_n_epochs = 1', 'Trainer.train_epochs = 4')
  messages = resume_messages(caplog)
  assert re.search(r'checkpoint \S*ckpt-93 cannot be read .*; trying the one before it', messages), (
      messages[-3000:])
  assert re.search(r'Resumed at step 62, epoch 2 from \S*ckpt-62', messages), messages[-3000:]
  assert int(run.global_step.numpy()) == 124
  assert tf.train.latest_checkpoint(str(tmp_path / 'checkpoints')).endswith('ckpt-124')


def test_a_second_process_on_the_same_model_dir_is_refused(tmp_path):
  lock = ModelDirLock(str(tmp_path))
  lock.acquire()  # This test process plays the run already in progress.
  try:
    result = run_main(['--gin_file=regression.gin', f"--gin_param=Trainer.model_dir='{tmp_path}'"])
  finally:
    lock.release()
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  assert f'is in use by process {os.getpid()} on ' in result.stderr
  assert sorted(p.name for p in tmp_path.iterdir()) == ['.lock']  # Nothing written.
