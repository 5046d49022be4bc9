"""A write error while saving, and Ctrl-C in every phase: a prompt, clear stop, nothing corrupt."""

import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from tests.conftest import MAIN, ROOT, run_main, wait_for
from tests.test_distribute import free_ports
from tests.test_resume import tensorboard_steps, vae_args

# Checkpoints of ~4 MB, saved every 20 steps, over a run far longer than the test.
BIG_REGRESSION = ['--gin_file=regression.gin', '--gin_param=RegressionModel.hidden_units=50000',
                  '--gin_param=Trainer.train_epochs=None', '--gin_param=Trainer.train_steps=100000',
                  '--gin_param=Checkpoints.every_n_steps=20',
                  '--gin_param=Trainer.eval_every_n_epochs=None',
                  '--gin_param=SummaryManager.every_n_epochs=None',
                  '--gin_param=SummaryManager.every_n_steps=20']


def start(args, env=None):
  return subprocess.Popen([sys.executable, MAIN, *args], cwd=ROOT, stderr=subprocess.PIPE,
                          stdout=subprocess.DEVNULL, text=True, env={**os.environ, **(env or {})})


def assert_checkpoints_complete(model_dir):
  """Every checkpoint `checkpoints/checkpoint` lists reads back in full."""
  state = tf.train.get_checkpoint_state(str(model_dir / 'checkpoints'))
  assert state is not None and state.all_model_checkpoint_paths
  for path in state.all_model_checkpoint_paths:
    reader = tf.train.load_checkpoint(path)
    for key in reader.get_variable_to_shape_map():
      reader.get_tensor(key)


def stop_by_a_failed_write(args, checkpoints, obstacle):
  """Starts a run and, once it saves a checkpoint, puts `obstacle` in the way of its saves.

  Checks the run stops with exit code 1, one line that names the failed save
  and the last one kept, and every checkpoint intact.

  Returns:
    The step whose checkpoint could not be saved, and what the run wrote to stderr.
  """
  state = checkpoints / 'checkpoint'  # Rewritten once each save is complete.
  saved_before = state.read_bytes() if state.exists() else b''
  process = start(args)
  wait_for(lambda: state.exists() and state.read_bytes() != saved_before, process,
           'a checkpoint of this run')
  if obstacle == 'file too large':  # Writes past 1 MB fail with EFBIG (Python ignores SIGXFSZ).
    resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
  else:
    subprocess.run(['chattr', '+i', str(checkpoints)], check=True)
  try:
    stderr = process.stderr.read()
    returncode = process.wait(timeout=300)
  finally:
    process.kill()  # Had the obstacle failed to stop it, it would train on for 100,000 steps.
    subprocess.run(['chattr', '-i', str(checkpoints)], check=True)
  assert returncode == 1, stderr[-3000:]
  assert 'Traceback' not in stderr
  error = re.search(r'error: checkpoint of step (\d+): could not be saved in \S+ \((.*)\); the last '
                    r'saved one, (\S+), is intact\. Free disk space', stderr)
  assert error, stderr[-3000:]
  step, reason, kept = int(error.group(1)), error.group(2), error.group(3)
  assert ('File too large' if obstacle == 'file too large' else 'Operation not permitted') in reason
  assert kept == tf.train.latest_checkpoint(str(checkpoints))
  assert kept.endswith(f'ckpt-{step - 20}')
  assert_checkpoints_complete(checkpoints.parent)
  return step, stderr


@pytest.mark.skipif(os.geteuid() != 0, reason='chattr +i needs root')
def test_a_failed_checkpoint_write_stops_and_keeps_the_previous_one(tmp_path):
  args = [*BIG_REGRESSION, f"--gin_param=Trainer.model_dir='{tmp_path}'"]
  checkpoints = tmp_path / 'checkpoints'

  def temporary():
    return sorted(p.name for p in checkpoints.iterdir() if 'temp' in p.name)

  # A file too large: the failed save's temporary files are removed at once.
  step, _ = stop_by_a_failed_write(args, checkpoints, 'file too large')
  assert temporary() == []
  # With that obstacle gone, a rerun resumes from the checkpoint kept; then its
  # directory becomes immutable. (Nothing can be removed from it: the temporary
  # files of a save that had begun then stay until the next save of that step.)
  kept_step = step - 20
  step, stderr = stop_by_a_failed_write(args, checkpoints, 'directory immutable')
  assert f'Resumed at step {kept_step}, ' in stderr
  # With that obstacle gone too, a rerun resumes from the checkpoint kept, and cleans up.
  result = run_main([*args, '--gin_param=Trainer.train_steps=' + str(step + 20)])
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'Resumed at step {step - 20}, ' in result.stderr
  assert temporary() == []


def loading_tensorflow(process):
  """Whether the process has begun loading TensorFlow's library (it prints nothing meanwhile)."""
  with open(f'/proc/{process.pid}/maps') as maps:
    return 'libtensorflow' in maps.read()


def interrupt(args, pattern, env=None):
  """Starts main.py, sends SIGINT once stderr matches `pattern`; returns (exit code, stderr).

  `pattern` None: once the process loads TensorFlow, with its start-up output set aside.
  """
  process = start(args, env)
  lines = []
  if pattern is None:
    wait_for(lambda: loading_tensorflow(process), process, 'TensorFlow loading',
             poll_seconds=0.01)
    process.send_signal(signal.SIGINT)
  else:
    for line in process.stderr:
      lines.append(line)
      if re.search(pattern, line):
        process.send_signal(signal.SIGINT)
        break
  lines.append(process.stderr.read())
  return process.wait(timeout=300), ''.join(lines)


STOPPED = r'stopped by SIGINT at step (\d+); saved (\S+)\. Rerun'


def test_ctrl_c_while_tensorflow_loads_stops_with_130_and_writes_nothing(tmp_path):
  returncode, stderr = interrupt(vae_args(tmp_path), None)
  assert returncode == 130, stderr[-3000:]
  assert 'Traceback' not in stderr
  assert 'stopped by SIGINT outside the training loop' in stderr, stderr[-3000:]
  # Nothing to resume: a rerun is a fresh run.
  assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_tracing_then_training_stops_with_130_and_the_rerun_resumes(tmp_path):
  checkpoints = str(tmp_path / 'checkpoints')
  # XLA starts when the Trainer lowers the loops to HLO, while tracing them (a
  # line of TensorFlow's, shown when the user sets TF_CPP_MIN_LOG_LEVEL).
  returncode, stderr = interrupt(vae_args(tmp_path), r'XLA service',
                                 env={'TF_CPP_MIN_LOG_LEVEL': '0'})
  assert returncode == 130, stderr[-3000:]
  assert 'Traceback' not in stderr
  stopped = re.search(STOPPED, stderr)
  assert stopped, stderr[-3000:]
  first_stop = int(stopped.group(1))
  assert stopped.group(2) == tf.train.latest_checkpoint(checkpoints)
  assert stopped.group(2).endswith(f'ckpt-{first_stop}')
  # The rerun resumes there; Ctrl-C as it logs its first progress line, while training.
  returncode, stderr = interrupt(vae_args(tmp_path), r'^\d\d:\d\d:\d\d step \d+/')
  assert returncode == 130, stderr[-3000:]
  assert 'Traceback' not in stderr
  assert f'Resumed at step {first_stop}, ' in stderr, stderr[-3000:]
  stopped = re.search(STOPPED, stderr)
  assert stopped, stderr[-3000:]
  second_stop = int(stopped.group(1))
  assert second_stop > first_stop
  assert stopped.group(2) == tf.train.latest_checkpoint(checkpoints)
  assert stopped.group(2).endswith(f'ckpt-{second_stop}')
  assert_checkpoints_complete(tmp_path)
  # TensorBoard reads each step once; the config's text, once, from the first run.
  train_steps = tensorboard_steps(tmp_path / 'train')
  assert train_steps.pop('operative_config') == [first_stop], train_steps
  assert train_steps, 'no train point written'
  for split, steps_by_tag in [('train', train_steps)] + (
      [('val', tensorboard_steps(tmp_path / 'val'))] if (tmp_path / 'val').exists() else []):
    for tag, steps in steps_by_tag.items():
      assert all(a < b for a, b in zip(steps, steps[1:])), (split, tag, steps)
      assert steps[-1] <= second_stop, (split, tag, steps)


def test_ctrl_c_twice_while_saving_leaves_no_corrupt_checkpoint(tmp_path):
  # Saving ~17 MB after every step: the second Ctrl-C lands in a save.
  args = [*BIG_REGRESSION, '--gin_param=RegressionModel.hidden_units=200000',
          '--gin_param=Trainer.train_steps=200', '--gin_param=Checkpoints.every_n_steps=1',
          '--gin_param=Trainer.steps_per_loop=1', f"--gin_param=Trainer.model_dir='{tmp_path}'"]
  rng = random.Random(0)
  state = tmp_path / 'checkpoints' / 'checkpoint'
  for _ in range(2):
    saved_before = state.read_bytes() if state.exists() else b''
    process = start(args)
    while not state.exists() or state.read_bytes() == saved_before:  # Until this run saves.
      assert process.poll() is None, process.stderr.read()[-3000:]
      time.sleep(0.02)
    time.sleep(rng.uniform(0, 0.5))
    process.send_signal(signal.SIGINT)
    time.sleep(rng.uniform(0, 0.05))
    process.send_signal(signal.SIGINT)
    stderr = process.stderr.read()
    # A second Ctrl-C after the exit began (Python's shutdown restores the default handler)
    # ends the process by the signal: the shell shows 130 either way.
    assert process.wait(timeout=300) in (130, -signal.SIGINT), stderr[-3000:]
    assert 'Traceback' not in stderr
    assert re.search(r'stopped at once by a second SIGINT|stopped by SIGINT at step', stderr)
    assert_checkpoints_complete(tmp_path)
  # A few steps are enough to show the rerun resumes from the latest checkpoint.
  last = int(tf.train.latest_checkpoint(str(tmp_path / 'checkpoints')).rsplit('-', 1)[1])
  result = run_main([*args, f'--gin_param=Trainer.train_steps={last + 3}'])
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'Resumed at step {last}, ' in result.stderr, result.stderr[-3000:]
  assert tf.train.latest_checkpoint(str(tmp_path / 'checkpoints')).endswith(f'ckpt-{last + 3}')
  assert_checkpoints_complete(tmp_path)


def test_ctrl_c_ends_a_run_tensorflow_holds_waiting_for_another_worker(tmp_path):
  # Worker 1 never starts: building the strategy waits for it inside TensorFlow,
  # which holds the interpreter, so no Python handler can run.
  cluster = {'worker': [f'127.0.0.1:{port}' for port in free_ports(2)]}
  tf_config = json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': 0}})
  process = subprocess.Popen(
      [sys.executable, MAIN, '--gin_file=regression.gin',
       f"--gin_param=Trainer.model_dir='{tmp_path}'",
       '--gin_param=Trainer.strategy=@multi_worker_mirrored_strategy'],
      cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
      env={**os.environ, 'TF_CONFIG': tf_config})
  lines = []
  for line in process.stderr:
    lines.append(line)
    if 'Joining the cluster of TF_CONFIG as worker 0' in line:  # It waits for worker 1.
      break
  time.sleep(2)
  process.send_signal(signal.SIGINT)
  try:
    returncode = process.wait(timeout=60)  # The watchdog's 10 s, and margin.
  finally:
    process.kill()
  stderr = ''.join(lines) + process.stderr.read()
  assert returncode == -signal.SIGKILL, stderr[-3000:]
  assert 'error: SIGINT did not stop the run within 10 s' in stderr
  assert 'Rerun the same command to resume from the last checkpoint' in stderr
