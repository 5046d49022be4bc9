"""README.md's commands, run as written, in order, in a fresh working directory.

Each `gin-trainer` command of the README, run by the command the install
put beside this Python, runs once, from an empty directory standing for a
fresh clone's, so every relative `runs/...` model_dir starts empty. (The
README's `gin-trainer-sweep` command runs the same way in test_sweep.py,
whose tests check what it trained.) A training command must train
to the end or, where the README says it refuses (devices this machine
lacks, a data file it lacks), stop with its one `error:` line. A command
after training (evaluate, export, predict) must write what it promises.
"""

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT, read_scalars
from gin_trainer.after_training import COMMANDS as AFTER_TRAINING

# What the README says these commands do on a machine without GPUs or MNIST.
REFUSED = {
    'runs/two_gpus': ['mirrored_strategy.devices', '/gpu:0', 'this machine does not have'],
    'runs/vae_mnist': ['npz_images', '/data/mnist.npz', 'no file at'],
}


def readme_commands():
  """The README's training commands: continuation lines joined, comments cut."""
  with open(os.path.join(ROOT, 'README.md')) as readme:
    text = readme.read().replace('\\\n', ' ')
  commands = []
  for line in text.splitlines():
    if line.strip().startswith(('gin-trainer ', 'gin-trainer-sweep ')):
      commands.append(shlex.split(line.strip(), comments=True))
  return commands


def model_dir_of(words):
  """The command's model_dir as written (main.py's, or the sweep's root)."""
  for word in words:
    found = re.match(r'--(?:gin_param=Trainer\.model_dir="(.+)"|root=(.+)|model_dir=(.+))$',
                     word)
    if found:
      return next(group for group in found.groups() if group)
  gin_file = next(word.split('=', 1)[1] for word in words if word.startswith('--gin_file='))
  return {'regression.gin': 'runs/regression', 'vae.gin': 'runs/vae'}[gin_file]


COMMANDS = [words for words in readme_commands()
            if not any(word.startswith('--gin_param=Trainer.model_dir="/shared/')
                       for word in words)]  # A cluster of two hosts.
# The sweep's runs are tested in test_sweep.py (its `grid` fixture runs it as written).
RUN_HERE = [words for words in COMMANDS if words[0] != 'gin-trainer-sweep']


def run_as_written(words, cwd):
  """Runs README `words` from `cwd` by the command the install put beside this Python.

  As `source .venv/bin/activate` gives it; returns what it did.
  """
  argv = [os.path.join(os.path.dirname(sys.executable), words[0]), *words[1:]]
  return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


def after_training(words):
  """The command after training ('evaluate', ...) that `words` run, if any."""
  return words[1] if words[0] == 'gin-trainer' and words[1] in AFTER_TRAINING else None


def test_every_training_command_has_its_own_model_dir():
  assert len(COMMANDS) >= 10
  model_dirs = [model_dir_of(words) for words in COMMANDS if not after_training(words)]
  assert len(set(model_dirs)) == len(model_dirs), model_dirs


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  return tmp_path_factory.mktemp('fresh_clone')


@pytest.mark.parametrize('words', RUN_HERE, ids=[
    ' '.join(filter(None, [after_training(words), model_dir_of(words)])) for words in RUN_HERE])
def test_readme_command_runs_as_written(workdir, words):
  result = run_as_written(words, workdir)
  model_dir = model_dir_of(words)
  if model_dir in REFUSED:
    assert result.returncode in (1, 2), result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
    assert len(errors) == 1 and 'Traceback' not in result.stderr, result.stderr[-2000:]
    for word in REFUSED[model_dir]:
      assert word in errors[0], errors[0]
    return
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Traceback' not in result.stderr and 'nothing to do' not in result.stderr
  if after_training(words):
    check_after_training(workdir, words, result.stdout)
    return
  run = workdir / model_dir
  assert (run / 'checkpoints' / 'checkpoint').exists(), run
  assert read_scalars(run / 'val')['loss'], run
  # The first and last lines of the run say where it is, in full.
  assert f'model_dir: {run}' in result.stderr and f'Results in {run}' in result.stderr
  if '--gin_param=VAETrainer.beta=4.0' in words:  # The KL warm-up ends within the run.
    assert read_scalars(workdir / model_dir / 'train')['schedule/kl_weight'][-1][1] == 4.0


def check_after_training(workdir, words, stdout):
  """What an evaluate, export or predict command promises, on disk and in its output."""
  model_dir = workdir / model_dir_of(words)
  flag = lambda name: [word.split('=', 1)[1] for word in words if word.startswith(f'--{name}=')]
  if words[1] == 'evaluate':
    for split in flag('split'):
      assert read_scalars(model_dir / f'eval_{split}')['loss'], split
      assert f'on {split}: loss=' in stdout
  elif words[1] == 'export':
    exported = list((model_dir / 'export').glob('step_*'))
    assert len(exported) == 1, exported
    assert (exported[0] / 'saved_model' / 'saved_model.pb').exists()
    assert (exported[0] / 'model.keras').exists()
  else:
    assert (workdir / flag('outputs')[0]).stat().st_size > 0
