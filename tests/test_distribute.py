"""One binding from one device to several: MirroredStrategy on two logical CPUs, and two workers.

Every run goes through main.py, as a user would start it. The reference is
the same command on one device: with the same global batch and seed, a
distributed run must log the same points and end with the same weights,
within float rounding (replicas sum their gradients in another order).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import (MAIN, ROOT, final_state, logged_points, run_main, snapshot,
                            start_and_signal)
from gin_trainer.distribute.strategies import mirrored_strategy
from gin_trainer.errors import ConfigError

# Regression, 600 steps (about 19 epochs, so loops cross epoch ends), with
# summaries, evaluations and checkpoints at intervals that do not divide each other.
RUN = ['--gin_file=regression.gin', '--gin_param=Trainer.train_epochs=None',
       '--gin_param=Trainer.train_steps=600', '--gin_param=SummaryManager.every_n_epochs=None',
       '--gin_param=SummaryManager.every_n_steps=50',
       '--gin_param=Trainer.eval_every_n_epochs=None', '--gin_param=Trainer.eval_every_n_steps=150',
       '--gin_param=Checkpoints.every_n_steps=125', '--gin_param=Trainer.steps_per_loop=10']
MIRRORED = ['--gin_param=Trainer.strategy=@mirrored_strategy',
            '--gin_param=mirrored_strategy.cpu_replicas=2']
MULTI_WORKER = ['--gin_param=Trainer.strategy=@multi_worker_mirrored_strategy']
# Float rounding of sums over replicas, compounded over 600 Adam steps.
RTOL, ATOL = 1e-4, 1e-6


def args(model_dir, *extra):
  return [*RUN, f"--gin_param=Trainer.model_dir='{model_dir}'", *extra]


def train(model_dir, *extra):
  result = run_main(args(model_dir, *extra))
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def assert_close_runs(run_dir, reference_dir):
  """The same points (steps and values) and the same final checkpoint as the reference."""
  points, reference = logged_points(run_dir), logged_points(reference_dir)
  assert points.keys() == reference.keys()
  for split in points:
    assert points[split].keys() == reference[split].keys(), split
    for tag, tag_points in points[split].items():
      steps = [step for step, _ in tag_points]
      assert steps == [step for step, _ in reference[split][tag]], (split, tag)
      assert len(set(steps)) == len(steps), (split, tag, steps)  # Each point once.
      np.testing.assert_allclose([value for _, value in tag_points],
                                 [value for _, value in reference[split][tag]], RTOL, ATOL,
                                 err_msg=f'{split}/{tag}')
  name, state = final_state(run_dir)
  reference_name, reference_state = final_state(reference_dir)
  assert name == reference_name
  for key, value in reference_state.items():
    if key.startswith(('model/', 'model_variables/', 'optimizer/')):
      np.testing.assert_allclose(state[key], value, RTOL, ATOL, err_msg=key)


@pytest.fixture(scope='module')
def one_device(tmp_path_factory):
  model_dir = tmp_path_factory.mktemp('one_device')
  train(model_dir)
  return model_dir


@pytest.fixture(scope='module')
def mirrored(tmp_path_factory):
  """A 2-replica run stopped by SIGTERM past step 350, then rerun to its end."""
  model_dir = tmp_path_factory.mktemp('mirrored')
  returncode, stderr = start_and_signal(args(model_dir, *MIRRORED), signal.SIGTERM,
                                        after_step=350)
  assert returncode == 128 + signal.SIGTERM, stderr[-3000:]
  assert 'Training on 2 replicas with MirroredStrategy' in stderr
  stopped = re.search(r'stopped by SIGTERM at step (\d+); saved \S+ckpt-(\d+)\. Rerun', stderr)
  assert stopped and stopped.group(1) == stopped.group(2), stderr[-3000:]
  assert 350 <= int(stopped.group(1)) < 600
  result = train(model_dir, *MIRRORED)
  assert 'Training on 2 replicas with MirroredStrategy' in result.stderr
  assert f'Resumed at step {stopped.group(1)}' in result.stderr
  return model_dir


def test_mirrored_on_two_devices_stopped_and_resumed_matches_one_device(mirrored, one_device):
  # Each point once, the same steps and values (within rounding) and the same
  # final weights as the uninterrupted run on one device.
  assert_close_runs(mirrored, one_device)
  config = (mirrored / 'operative_config.gin').read_text()
  assert 'Trainer.strategy = @mirrored_strategy' in config
  assert 'mirrored_strategy.cpu_replicas = 2' in config


def test_a_tf_data_split_under_mirrored_resumes_and_matches_one_device(tmp_path):
  # Arrays through tf.data (shuffled by tf.data, not on the device): under
  # the strategy the pipeline resumes by replaying its seeded order.
  through_tf_data = '--gin_param=Trainer.data_on_device=False'
  train(tmp_path / 'one_device', through_tf_data)
  returncode, stderr = start_and_signal(args(tmp_path / 'mirrored', through_tf_data, *MIRRORED),
                                        signal.SIGTERM, after_step=250)
  assert returncode == 128 + signal.SIGTERM, stderr[-3000:]
  train(tmp_path / 'mirrored', through_tf_data, *MIRRORED)
  assert_close_runs(tmp_path / 'mirrored', tmp_path / 'one_device')


def test_mirrored_nan_stops_with_the_last_good_checkpoint(tmp_path):
  result = run_main(args(tmp_path, *MIRRORED,
                         '--gin_param=adam.learning_rate=@piecewise_constant_decay()',
                         '--gin_param=piecewise_constant_decay.boundaries=[150]',
                         '--gin_param=piecewise_constant_decay.values=[1e-3, 1e6]'))
  assert result.returncode == 1, result.stderr[-3000:]
  assert 'Traceback' not in result.stderr
  error = re.search(r'error: loss is \S+ at step (\d+); stopped without saving it\. '
                    r'The last good checkpoint is (\S+)\.', result.stderr)
  assert error, result.stderr[-3000:]
  assert int(error.group(1)) > 150
  assert error.group(2) == tf.train.latest_checkpoint(str(tmp_path / 'checkpoints'))
  assert error.group(2).endswith('ckpt-125')


def test_a_global_batch_that_does_not_split_among_replicas_is_refused(mirrored):
  before = snapshot(mirrored)
  result = run_main(args(mirrored, *MIRRORED, '--gin_param=Trainer.batch_size=33'))
  assert result.returncode == 2
  assert 'Traceback' not in result.stderr
  assert re.search(r'error: Trainer.batch_size=33 is the global batch and must split evenly '
                   r'among the 2 replicas; bind a multiple of 2', result.stderr), \
      result.stderr[-2000:]
  assert snapshot(mirrored) == before


def free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(('127.0.0.1', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def start_workers(model_dir, log_dir):
  """Starts a cluster of two workers on 127.0.0.1 through main.py; each logs to log_dir."""
  cluster = {'worker': [f'127.0.0.1:{port}' for port in free_ports(2)]}
  workers = []
  for index in range(2):
    tf_config = json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': index}})
    with open(log_dir / f'worker{index}.log', 'w') as log:
      workers.append(subprocess.Popen(
          [sys.executable, MAIN, *args(model_dir, *MULTI_WORKER)], cwd=ROOT, text=True,
          stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, 'TF_CONFIG': tf_config}))
  return workers


def finish(workers, log_dir):
  """Waits for the workers; returns their exit codes and logs."""
  codes = [worker.wait(timeout=600) for worker in workers]
  return codes, [(log_dir / f'worker{index}.log').read_text() for index in range(len(workers))]


def test_two_workers_stop_together_on_sigterm_resume_and_train_as_one_device(one_device,
                                                                             tmp_path):
  """SIGTERM to one worker stops both at one step; rerun, they finish as one device would.

  Only the chief writes model_dir, before the stop and after the rerun.
  """
  model_dir = tmp_path / 'run'
  model_dir.mkdir()
  workers = start_workers(model_dir, tmp_path)
  log = tmp_path / 'worker1.log'
  while not re.search(r'\d step (3[5-9]\d|[45]\d\d)/', log.read_text()):
    assert workers[1].poll() is None, log.read_text()[-2000:]
    time.sleep(0.05)
  workers[1].send_signal(signal.SIGTERM)  # The other worker, not the chief.
  codes, logs = finish(workers, tmp_path)
  assert codes == [128 + signal.SIGTERM] * 2, logs[0][-2000:] + logs[1][-2000:]
  assert 'worker 0 (chief)' in logs[0] and 'worker 1.' in logs[1]
  steps = [re.search(r'stopped by SIGTERM at step (\d+)', text).group(1) for text in logs]
  assert steps[0] == steps[1] and 350 <= int(steps[0]) < 600
  assert tf.train.latest_checkpoint(str(model_dir / 'checkpoints')).endswith(f'ckpt-{steps[0]}')
  # The other worker's scratch checkpoints are gone after its save at the stop.
  assert not [p.name for p in model_dir.iterdir() if p.name.startswith('.worker')]
  codes, logs = finish(start_workers(model_dir, tmp_path), tmp_path)
  assert codes == [0, 0], logs[0][-2000:] + logs[1][-2000:]
  assert 'worker 0 (chief)' in logs[0] and 'worker 1.' in logs[1]
  assert all(f'Resumed at step {steps[0]}' in text for text in logs)
  # The chief's files, and nothing of the other worker's (its scratch checkpoints are gone).
  assert sorted(p.name for p in model_dir.iterdir() if not p.name.startswith('events.')) == [
      '.lock', 'checkpoints', 'command_line.json', 'operative_config.gin', 'run_summary.json',
      'train', 'val']
  # Evaluation is sharded: each worker evaluates its half of val/ with its own
  # weights, so val/ matching one device means both workers hold its weights.
  assert_close_runs(model_dir, one_device)


def test_a_tf_config_without_this_task_is_refused(tmp_path):
  tf_config = json.dumps({'cluster': {'worker': ['127.0.0.1:1']},
                          'task': {'type': 'worker', 'index': 3}})
  result = run_main(args(tmp_path, *MULTI_WORKER), env={'TF_CONFIG': tf_config})
  assert result.returncode == 2
  assert 'Traceback' not in result.stderr
  assert re.search(r'error: TF_CONFIG=.* does not name a cluster with this task in it '
                   r'\(IndexError: .*\); set it to JSON such as \{"cluster"', result.stderr), \
      result.stderr[-2000:]
  assert sorted(p.name for p in tmp_path.iterdir()) == []  # Refused before writing anything.


def test_cpu_replicas_after_tensorflow_started_are_refused():
  tf.constant(1.0)  # TensorFlow has started in this process.
  with pytest.raises(ConfigError, match=r'mirrored_strategy.cpu_replicas must take effect before '
                                         r'TensorFlow starts'):
    mirrored_strategy(cpu_replicas=2)


def test_a_worker_that_fails_stops_the_other_with_one_line(tmp_path):
  # Worker 1 cannot write its model_dir, so it stops while worker 0 waits for it.
  blocker = tmp_path / 'a_file'
  blocker.write_text('')
  cluster = {'worker': [f'127.0.0.1:{port}' for port in free_ports(2)]}
  workers = []
  for index, model_dir in enumerate([tmp_path / 'run', blocker / 'run']):
    tf_config = json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': index}})
    workers.append(subprocess.Popen(
        [sys.executable, MAIN, *args(model_dir, *MULTI_WORKER)], cwd=ROOT, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, 'TF_CONFIG': tf_config}))
  stderrs = [worker.communicate(timeout=300)[1] for worker in workers]
  # Worker 1's is a configuration mistake (2); worker 0 lost its peer (1).
  assert [worker.returncode for worker in workers] == [1, 2], stderrs[0][-2000:]
  for stderr in stderrs:
    assert 'Traceback' not in stderr, stderr[-3000:]
  assert re.search(r'error: Trainer.model_dir .* cannot be created or written', stderrs[1])
  assert re.search(r'error: another worker of the cluster stopped or cannot be reached \(.*\); '
                   r'see its log, then rerun every worker to resume', stderrs[0]), \
      stderrs[0][-2000:]
