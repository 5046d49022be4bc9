"""Runs gin-trainer once per combination of a grid of bindings and tabulates the results.

  gin-trainer-sweep --gin_file=regression.gin \\
      --grid='adam.learning_rate=[1e-3, 3e-3]' --grid='Trainer.batch_size=[32, 64]' \\
      --root=/tmp/sweep [--parallel=2]

Each run is the gin-trainer command with the --gin_file and --gin_param flags given here,
then its grid values, in `ROOT/<its values>` (e.g.
`learning_rate=0.001,batch_size=32`), its output in `main.log` there. A
failed run is reported and the others go on. Ctrl-C or SIGTERM stops every
run (each saves a checkpoint, as gin-trainer does) and starts no other.
Rerunning the same command skips the finished runs (those that wrote their
HParams record) and resumes the others from their checkpoints.
`tensorboard --logdir ROOT` shows one row per run in the HParams dashboard,
named by the values the runs differ in (`0.001,32`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from types import FrameType
from typing import IO, Dict, List, Optional, Sequence

from absl import app
from absl import flags

from gin_trainer.config import gin_files
from gin_trainer.summaries import hparams
from gin_trainer.summaries.event_files import read_scalars

FLAGS = flags.FLAGS
flags.DEFINE_multi_string('gin_file', [], 'A .gin file every run applies, as in gin-trainer.')
flags.DEFINE_multi_string('gin_param', [], 'A binding every run applies before its grid values.')
flags.DEFINE_multi_string(
    'grid', None, "A binding to a list of values, e.g. 'Trainer.batch_size=[32, 64]'; repeatable. "
    'The sweep runs every combination of the values of all --grid flags.')
flags.DEFINE_string('root', None, 'The directory of the sweep: one sub-directory per run.')
flags.DEFINE_integer('parallel', 1, 'How many runs train at a time.', lower_bound=1)

COMMAND = [sys.executable, '-m', 'gin_trainer.cli']  # The gin-trainer command, in this Python.
LOG_FILE = 'main.log'
_UNSAFE_IN_NAMES = re.compile(r'[^\w.@+-]+')


@dataclasses.dataclass
class Run:
  """One combination of grid values.

  Attributes:
    name: Its sub-directory's name, from its values (`learning_rate=0.001,batch_size=32`).
    trial: Its name in the HParams table: the values the runs differ in (`0.001,32`).
    bindings: Its grid values as bindings, e.g. 'Trainer.batch_size=32'.
    model_dir: Where it trains.
    status: 'to run', 'trained', 'finished before', 'failed', 'interrupted' or
      'not started' (the sweep was stopped first).
    error: For a failed run, the last line it printed (its error).
  """
  name: str
  trial: str
  bindings: List[str]
  model_dir: str
  status: str = 'to run'
  error: str = ''


def _name_part(text: str) -> str:
  return _UNSAFE_IN_NAMES.sub('_', text).strip('_')


def plan(grid: Sequence[str], root: str) -> List[Run]:
  """Every combination of the --grid values, in the order given.

  Raises:
    gin_files.BadBinding: A --grid flag is not gin syntax, or not one binding to a list.
    app.UsageError: Two runs would share a directory.
  """
  axes: Dict[str, list] = {}
  for flag_value in grid:
    parsed = list(gin_files.read_bindings([flag_value], flag='--grid').items())
    key, values = parsed[0] if len(parsed) == 1 else (None, None)
    if not isinstance(values, list) or not values or key in axes:
      raise gin_files.BadBinding('--grid', flag_value, ValueError(
          "give one binding to a list of values, e.g. 'Trainer.batch_size=[32, 64]', once per key"))
    axes[key] = values
  # Directories are named by parameter (learning_rate=...), unless two keys share one.
  short = {key: key.rsplit('.', 1)[-1] for key in axes}
  if len(set(short.values())) < len(short):
    short = {key: key for key in axes}
  runs = []
  for combination in itertools.product(*axes.values()):
    values = {key: _name_part(value if isinstance(value, str) else repr(value))
              for key, value in zip(axes, combination)}
    name = ','.join(f'{_name_part(short[key])}={value}' for key, value in values.items())
    trial = ','.join(value for key, value in values.items() if len(axes[key]) > 1) or name
    runs.append(Run(name, trial, [f'{key}={value!r}' for key, value in zip(axes, combination)],
                    os.path.join(root, name)))
  names = [run.name for run in runs]
  if len(set(names)) < len(names):
    raise app.UsageError(f'two runs would share a directory: {names}')
  return runs


class Stopper:
  """Stops every run on SIGINT or SIGTERM, and starts no other.

  The runs are in sessions of their own, so a terminal's Ctrl-C reaches the
  sweep alone; it passes the signal on once to each run, which saves and
  exits as gin-trainer does (a second Ctrl-C is passed on too: stop at once).
  """

  def __init__(self):
    self.signal_number: Optional[int] = None
    self._lock = threading.Lock()  # Taken by the run threads and the handler, never around it.
    self._running: Dict[str, subprocess.Popen] = {}

  def listen(self) -> None:
    for signal_number in (signal.SIGINT, signal.SIGTERM):
      signal.signal(signal_number, self._stop)

  def _stop(self, signal_number: int, frame: Optional[FrameType]) -> None:
    del frame
    if self.signal_number is None:
      print(f'stopping every run ({signal.Signals(signal_number).name}): each saves a checkpoint',
            flush=True)
    with self._lock:
      self.signal_number = signal_number
      for process in self._running.values():
        process.send_signal(signal_number)

  def start(self, name: str, command: List[str], log: IO[str]) -> Optional[subprocess.Popen]:
    """Starts a run's process, or None once the sweep is stopping."""
    with self._lock:
      if self.signal_number is not None:
        return None
      process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
      self._running[name] = process
      return process

  def finished(self, name: str) -> None:
    with self._lock:
      del self._running[name]


def train(run: Run, gin_files: Sequence[str], gin_params: Sequence[str],
          stopper: Stopper) -> None:
  """Runs gin-trainer for `run` (resuming it if it started before); sets its status."""
  if stopper.signal_number is not None:
    run.status = 'not started'
    return
  os.makedirs(run.model_dir, exist_ok=True)
  bindings = [*gin_params, *run.bindings, f'Trainer.model_dir={run.model_dir!r}']
  command = [*COMMAND, *[f'--gin_file={f}' for f in gin_files],
             *[f'--gin_param={b}' for b in bindings], f'--trial_name={run.trial}']
  log_path = os.path.join(run.model_dir, LOG_FILE)
  start = time.monotonic()
  with open(log_path, 'a') as log:
    process = stopper.start(run.name, command, log)
    if process is None:
      run.status = 'not started'
      return
    print(f'{run.name}: training', flush=True)
    exit_code = process.wait()
    stopper.finished(run.name)
  if exit_code == 0:
    run.status = 'trained'
    print(f'{run.name}: trained in {time.monotonic() - start:.0f} s', flush=True)
  elif stopper.signal_number is not None and exit_code in (128 + signal.SIGINT,
                                                            128 + signal.SIGTERM):
    run.status = 'interrupted'
    print(f'{run.name}: interrupted; its last checkpoint is in {run.model_dir}', flush=True)
  else:
    run.status = 'failed'
    with open(log_path) as log:  # Its last line, but for gin's notes on where it was raised.
      lines = [line.strip() for line in log
               if line.strip() and not line.strip().startswith('In call to configurable')]
    run.error = lines[-1] if lines else ''
    print(f'{run.name}: FAILED with exit code {exit_code}; see {log_path}', flush=True)


def final_scalars(run: Run) -> Dict[str, float]:
  """The last point of each scalar in the run's val/ (none for a failed run)."""
  if run.status in ('failed', 'not started'):
    return {}
  return {tag: points[-1][1]
          for tag, points in read_scalars(os.path.join(run.model_dir, 'val')).items()}


def table(runs: Sequence[Run]) -> str:
  """One line per run: its name, status and final validation scalars."""
  finals = [final_scalars(run) for run in runs]
  tags = sorted({tag for scalars in finals for tag in scalars}, key=lambda t: (t != 'loss', t))
  rows = [['run', 'status', *[f'val/{tag}' for tag in tags]]]
  rows += [[run.name, run.status, *[f'{scalars[t]:.4g}' if t in scalars else '-' for t in tags]]
           for run, scalars in zip(runs, finals)]
  widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
  return '\n'.join('  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                   for row in rows)


def main(argv: Sequence[str]) -> Optional[int]:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    gin_files.read_bindings(FLAGS.gin_param)  # A syntax error stops the sweep before any run.
    runs = plan(FLAGS.grid, FLAGS.root)
  except gin_files.BadBinding as error:
    print(f'error: {error}', file=sys.stderr)
    return 2  # A usage error (the shell's convention, as gin-trainer's).
  for run in runs:
    if hparams.written(run.model_dir):
      run.status = 'finished before'
  to_train = [run for run in runs if run.status == 'to run']
  print(f'{len(runs)} runs in {FLAGS.root}: {len(to_train)} to train, '
        f'{len(runs) - len(to_train)} finished before', flush=True)
  stopper = Stopper()
  stopper.listen()
  with concurrent.futures.ThreadPoolExecutor(FLAGS.parallel) as pool:
    list(pool.map(lambda run: train(run, FLAGS.gin_file, FLAGS.gin_param, stopper), to_train))
  print('\n' + table(runs))
  failed = [run for run in runs if run.status == 'failed']
  for run in failed:
    print(f'\n{run.name} failed: {run.error}\n  log: {os.path.join(run.model_dir, LOG_FILE)}')
  print(f'\ntensorboard --logdir {FLAGS.root}   # HParams tab: one row per run')
  if stopper.signal_number is not None:
    print('stopped: rerun the same command to resume the interrupted runs and start the others')
    return 128 + stopper.signal_number
  return 1 if failed else 0


def run() -> None:
  """The `gin-trainer-sweep` command (`python -m gin_trainer.sweep`)."""
  flags.mark_flags_as_required(['root', 'grid'])
  app.run(main)


if __name__ == '__main__':
  run()
