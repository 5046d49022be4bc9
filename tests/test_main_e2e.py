"""`main.py` run as a user runs it, and its output read as a user reads it."""

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tests.conftest import run_main
from gin_trainer.summaries.event_files import read_scalars
from gin_trainer.summaries import tags

FRAMEWORK_TAGS = {*tags.THROUGHPUT, tags.LEARNING_RATE}


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """regression.gin, then a second file, then a --gin_param overriding both."""
  root = tmp_path_factory.mktemp('e2e')
  extra = root / 'extra.gin'
  extra.write_text('Trainer.train_epochs = 10\nSummaryManager.gradient_stats = True\n')
  model_dir = root / 'model'
  args = ['--gin_file=regression.gin', f'--gin_file={extra}',
          f"--gin_param=Trainer.model_dir='{model_dir}'", '--gin_param=Trainer.train_epochs=20']
  result = run_main(args)
  assert result.returncode == 0, result.stderr[-3000:]
  return model_dir, args, result


def test_override_order_files_then_params_last_wins(run):
  model_dir, _, _ = run
  train = read_scalars(model_dir / 'train')
  assert [step for step, _ in train['loss']] == list(range(1, 21))  # --gin_param: 20 epochs.
  assert any(tag.startswith('gradients/variance/') for tag in train)  # From the second file.
  with open(model_dir / 'operative_config.gin') as f:
    operative = f.read()
  assert 'Trainer.train_epochs = 20' in operative
  assert 'SummaryManager.gradient_stats = True' in operative


def test_train_and_val_tags(run):
  model_dir, _, _ = run
  train = read_scalars(model_dir / 'train')
  assert {'loss', 'mae'} | FRAMEWORK_TAGS <= set(train)
  assert set(read_scalars(model_dir / 'val')) == {'loss', 'mae'}


def test_loss_falls_on_the_learnable_default(run):
  model_dir, _, _ = run
  val_loss = [value for _, value in read_scalars(model_dir / 'val')['loss']]
  assert val_loss[-1] < 0.5 * val_loss[0]


def test_console_shows_one_progress_line_per_interval(run):
  _, _, result = run
  lines = [line for line in result.stderr.splitlines() if '| ETA' in line]
  assert len(lines) == 20
  assert 'step 31/620 | epoch 1/20 | loss=' in lines[0]
  assert 'steps/s' in lines[-1] and 'step 620/620' in lines[-1]
  # The first loop's time holds its compilation: no ETA from it.
  assert lines[0].endswith('| ETA ?') and lines[-1].endswith('| ETA 0:00:00')


def run_files(model_dir):
  """Every file of a run but the lock file, which names the last process to hold it."""
  return {p: p.read_bytes() for p in model_dir.rglob('*') if p.is_file() and p.name != '.lock'}


def test_rerunning_a_finished_run_changes_nothing(run):
  model_dir, args, _ = run
  before = run_files(model_dir)
  result = run_main(args)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'nothing to do' in result.stderr
  assert run_files(model_dir) == before


def test_pure_noise_targets_are_accepted(tmp_path):
  result = run_main(['--gin_file=gin_configs/regression.gin',
                     f"--gin_param=Trainer.model_dir='{tmp_path}'",
                     '--gin_param=Trainer.train_epochs=2',
                     '--gin_param=synthetic_regression.pure_noise=True'])
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'synthetic_regression.pure_noise = True' in (tmp_path / 'operative_config.gin').read_text()
  assert len(read_scalars(tmp_path / 'val')['loss']) == 2


def test_help_describes_both_flags():
  result = run_main(['--helpfull'])  # absl prints the help and exits with 1.
  assert 'Traceback' not in result.stderr
  text = ' '.join(result.stdout.split())
  assert '--gin_file: A .gin file to apply' in text and 'gin_configs/' in text
  assert '--gin_param: A gin binding' in text and 'the last one wins' in text


def free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def get_json(base, path, **params):
  url = f'{base}{path}' + (f'?{urllib.parse.urlencode(params)}' if params else '')
  with urllib.request.urlopen(url, timeout=30) as response:
    return json.loads(response.read())


def test_tensorboard_serves_train_and_val_scalars(run, tmp_path):
  model_dir, _, _ = run
  port = free_port()
  log = open(tmp_path / 'tensorboard.log', 'w')
  server = subprocess.Popen(
      [sys.executable, '-m', 'tensorboard.main', f'--logdir={model_dir}', '--host=127.0.0.1',
       f'--port={port}', '--load_fast=false', '--reload_interval=1'],
      stdout=log, stderr=subprocess.STDOUT)
  base = f'http://127.0.0.1:{port}'
  try:
    deadline = time.monotonic() + 120
    while True:
      try:
        if {'train', 'val'} <= set(get_json(base, '/data/runs')):
          break
      except OSError:
        pass
      assert server.poll() is None, (tmp_path / 'tensorboard.log').read_text()
      assert time.monotonic() < deadline, 'TensorBoard did not serve both runs in time'
      time.sleep(0.5)
    tags = get_json(base, '/data/plugin/scalars/tags')
    assert {'loss', 'mae'} | FRAMEWORK_TAGS <= set(tags['train'])
    assert set(tags['val']) == {'loss', 'mae'}
    for run_name in ('train', 'val'):
      for tag in ('loss', 'mae'):
        points = get_json(base, '/data/plugin/scalars/scalars', run=run_name, tag=tag)
        assert [step for _, step, _ in points] == list(range(1, 21)), (run_name, tag)
  finally:
    server.terminate()
    server.wait(timeout=30)
    log.close()
