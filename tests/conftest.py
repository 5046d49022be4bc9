"""Shared helpers: a clean gin state per test, running main.py for real, reading what it saved."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import time
from typing import Callable, Dict, Mapping, Optional, Sequence

import gin
import pytest
import tensorflow as tf

from gin_trainer import models  # noqa: F401  (registers the models with gin, as the command does)
import gin_trainer
from gin_trainer.config import gin_files
from gin_trainer.run import xla_cache
from gin_trainer.summaries.event_files import read_scalars
from gin_trainer.summaries import tags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, 'main.py')
TIMINGS = set(tags.TIMINGS)


@pytest.fixture(scope='session', autouse=True)
def xla_cache_of_this_session(tmp_path_factory):
  """The commands the tests run keep their compiled XLA programs here, not in the user's cache."""
  os.environ[xla_cache.CACHE_ENV] = str(tmp_path_factory.mktemp('xla_cache'))
  yield
  del os.environ[xla_cache.CACHE_ENV]


@pytest.fixture(autouse=True)
def clean_gin():
  """Every test starts from no bindings, as a fresh `main.py` does."""
  gin.clear_config()
  yield
  gin.clear_config()


def run_main(args: Sequence[str], cwd: str = ROOT, timeout: float = 600,
             env: Optional[Mapping[str, str]] = None) -> subprocess.CompletedProcess:
  """Runs `python main.py ARGS` in a subprocess (`env` adds variables) and returns what it did."""
  return subprocess.run([sys.executable, MAIN, *args], cwd=cwd, capture_output=True,
                        text=True, timeout=timeout, check=False, env={**os.environ, **(env or {})})


def train_regression(model_dir: str, *bindings: str) -> gin_trainer.Trainer:
  """Trains in this process from regression.gin plus `bindings`; returns the Trainer."""
  gin.clear_config()
  gin_files.parse(['regression.gin'], [f'Trainer.model_dir = {str(model_dir)!r}', *bindings])
  run = gin_trainer.Trainer()
  run.train()
  return run


def final_state(model_dir, checkpoints: str = 'checkpoints'):
  """Every saved value of the latest checkpoint, timings and save counts aside.

  Args:
    model_dir: The run's directory.
    checkpoints: Its directory of checkpoints ('checkpoints/best': the best one).
  """
  path = tf.train.latest_checkpoint(os.path.join(model_dir, checkpoints))
  reader = tf.train.load_checkpoint(path)
  return os.path.basename(path), {
      key: reader.get_tensor(key) for key, dtype in reader.get_variable_to_dtype_map().items()
      # Not the object graph (it holds variable names, which vary) nor the iterator.
      if 'seconds' not in key and 'save_counter' not in key and dtype not in (tf.string, tf.variant)}


def logged_points(model_dir):
  """The points of train/ and val/, by tag, timings aside."""
  return {split: {tag: points for tag, points in read_scalars(model_dir / split).items()
                  if tag not in TIMINGS} for split in ('train', 'val')}


def wait_for(predicate: Callable[[], bool], process: subprocess.Popen, what: str,
             timeout: float = 120, poll_seconds: float = 0.05) -> None:
  """Waits until `predicate()`; fails if `process` ends first or `timeout` passes."""
  deadline = time.monotonic() + timeout
  while not predicate():
    if process.poll() is not None:
      output = process.stdout or process.stderr
      raise AssertionError(f'ended before {what}: ' + (output.read()[-3000:] if output else ''))
    assert time.monotonic() < deadline, f'no {what} in {timeout} s'
    time.sleep(poll_seconds)


def start_and_signal(args, signal_number, after_step, env=None):
  """Starts `main.py ARGS` and signals it once it logs a step >= after_step.

  Returns:
    The exit code and everything the run wrote to stderr.
  """
  process = subprocess.Popen([sys.executable, MAIN, *args], cwd=ROOT, stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, text=True,
                             env={**os.environ, **(env or {})})
  lines = []
  for line in process.stderr:
    lines.append(line)
    match = re.search(r'^\d\d:\d\d:\d\d step (\d+)/', line)
    if match and int(match.group(1)) >= after_step:
      process.send_signal(signal_number)
      break
  lines.append(process.stderr.read())
  return process.wait(timeout=300), ''.join(lines)


def snapshot(directory) -> Dict[str, bytes]:
  """Every file under `directory`, by relative path, with its bytes."""
  root = pathlib.Path(directory)
  return {str(path.relative_to(root)): path.read_bytes()
          for path in sorted(root.rglob('*')) if path.is_file()}


class FileProgress:
  """Prints a line as each test file finishes: its tests, failures and seconds.

  pytest names each file as it starts only when one process runs the tests;
  with several (pytest-xdist, as `pyproject.toml` asks) it prints dots, so
  this says which files are done.
  """

  def __init__(self, config: pytest.Config):
    self._config = config
    self._expected: Dict[str, int] = {}
    self._done: Dict[str, int] = {}
    self._failed: Dict[str, int] = {}
    self._seconds: Dict[str, float] = {}

  def pytest_xdist_node_collection_finished(self, node, ids: Sequence[str]) -> None:
    del node
    if not self._expected:  # Every process collects the same tests.
      for test_id in ids:
        path = test_id.split('::')[0]
        self._expected[path] = self._expected.get(path, 0) + 1

  def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
    path = report.nodeid.split('::')[0]
    self._seconds[path] = self._seconds.get(path, 0.0) + report.duration
    self._failed[path] = self._failed.get(path, 0) + int(report.failed)
    if report.when == 'teardown':
      self._done[path] = self._done.get(path, 0) + 1
      if self._done[path] == self._expected.get(path):
        reporter = self._config.pluginmanager.get_plugin('terminalreporter')
        reporter.write('\n')  # After the dots of the tests so far.
        reporter.write_line(f'{path}: {self._done[path]} tests, {self._failed[path]} failed, '
                            f'{self._seconds[path]:.0f} s')


def pytest_configure(config: pytest.Config) -> None:
  if config.pluginmanager.hasplugin('xdist') and config.getoption('numprocesses', None) and (
      not hasattr(config, 'workerinput')):  # The controller, not a worker.
    config.pluginmanager.register(FileProgress(config), 'file_progress')


# The files that take the longest, longest first: each of the two processes
# takes the next file when it is free (pyproject.toml turns off xdist's own
# order, most tests first), so starting with these ends them together.
SLOWEST_FILES = ('test_distribute.py', 'test_readme_examples.py', 'test_resume.py',
                 'test_sweep.py', 'test_benchmark_smoke.py', 'test_interrupts.py',
                 'test_summaries.py', 'test_after_training.py', 'test_bad_input.py',
                 'test_precision.py', 'test_keras_metrics.py', 'test_install.py',
                 'test_main_e2e.py', 'test_vae.py', 'test_profiling.py', 'test_compilation.py')


def pytest_collection_modifyitems(items: list) -> None:
  def rank(item: pytest.Item) -> int:
    name = item.path.name
    return SLOWEST_FILES.index(name) if name in SLOWEST_FILES else len(SLOWEST_FILES)
  items.sort(key=rank)  # Stable: each file's tests keep their order.
