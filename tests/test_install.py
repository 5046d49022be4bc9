"""Installed from its wheel into a fresh venv, gin-trainer is a command that works from any folder.

The fresh venv gets the project's wheel alone; its dependencies (TensorFlow
and the rest) are this environment's, made visible by a .pth file instead of
downloaded again.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import numpy as np
import pytest

from tests.conftest import ROOT, final_state
from gin_trainer.run import xla_cache
from gin_trainer.summaries.event_files import read_scalars

# Every line a default run prints: `HH:MM:SS message` (a warning says so after
# the time), or a line of the run summary's table, indented.
FRAMEWORK_LINE = re.compile(r'\d\d:\d\d:\d\d (warning: )?\S.*|  \S.*')


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
  """(the fresh venv's bin folder, a user's project folder, the wheel's path)."""
  work = tmp_path_factory.mktemp('install')
  source = work / 'source'  # A copy, so no stale build/ of the checkout goes into the wheel.
  shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
      '.venv', '.git', 'build', 'dist', '*.egg-info', '__pycache__', '.pytest_cache', 'runs'))
  build = subprocess.run(
      [sys.executable, '-m', 'pip', 'wheel', '--verbose', '--no-deps', '--no-build-isolation',
       '--wheel-dir', str(work / 'dist'), str(source)],
      capture_output=True, text=True, timeout=300, check=False)
  assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
  assert not re.search(r'Deprecat|license', build.stdout + build.stderr), build.stdout[-3000:]
  [wheel] = (work / 'dist').glob('gin_trainer-*.whl')

  venv = work / 'venv'
  subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
  fresh_python = venv / 'bin' / 'python'
  install = subprocess.run(
      [sys.executable, '-m', 'pip', '--python', str(fresh_python), 'install', '--no-deps',
       '--no-index', str(wheel)], capture_output=True, text=True, timeout=300, check=False)
  assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
  fresh_site = subprocess.run(
      [str(fresh_python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
      capture_output=True, text=True, check=True).stdout.strip()
  with open(os.path.join(fresh_site, 'dependencies.pth'), 'w') as pth:
    pth.write(sysconfig.get_paths()['purelib'] + '\n')

  # A user's project, with packages of their own named as the repository's folders.
  project = work / 'project'
  for package in ('models', 'trainer'):
    (project / package).mkdir(parents=True)
    (project / package / '__init__.py').write_text(f"OWNER = 'the user'  # {package}\n")
  return venv / 'bin', project, wheel


def test_the_wheel_adds_one_top_level_package(installed):
  _, _, wheel = installed
  with zipfile.ZipFile(wheel) as contents:
    names = contents.namelist()
    top_level = {name.split('/')[0] for name in names}
    assert top_level == {'gin_trainer', f'{wheel.name.split("-")[0]}-0.1.0.dist-info'}
    assert {'gin_trainer/gin_configs/base.gin', 'gin_trainer/gin_configs/regression.gin',
            'gin_trainer/gin_configs/vae.gin', 'gin_trainer/models/vae.py',
            'gin_trainer/cli.py'} <= set(names)
    entry_points = contents.read('gin_trainer-0.1.0.dist-info/entry_points.txt').decode()
  assert 'gin-trainer = gin_trainer.cli:run' in entry_points
  assert 'gin-trainer-sweep = gin_trainer.sweep:run' in entry_points


def run_in(folder, *command, env=None):
  """Runs `command` in `folder` as a user's shell would (`env` adds variables)."""
  return subprocess.run([str(part) for part in command], cwd=folder, capture_output=True,
                        text=True, timeout=600, check=False,
                        env={**{k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'},
                             **(env or {})})


def tensorboard_groups(tags):
  """The tag groups of a run in the order TensorBoard shows them (it opens the first two).

  TensorBoard sorts tags by name (digits by value, which these have none of)
  and groups them by the part before the first '/'.
  """
  return list(dict.fromkeys(tag.split('/', 1)[0] for tag in sorted(tags)))


def assert_only_framework_lines(result):
  lines = (result.stdout + result.stderr).splitlines()
  assert lines
  foreign = [line for line in lines if not FRAMEWORK_LINE.fullmatch(line)]
  assert not foreign, '\n'.join(foreign)


@pytest.mark.parametrize('gin_file, bindings', [
    ('regression.gin', ['Trainer.train_epochs=3']),
    ('vae.gin', ['Trainer.train_epochs=1', 'procedural_shapes.num_train=1024']),
])
def test_the_command_trains_a_shipped_config_from_any_folder(installed, gin_file, bindings):
  bin_dir, project, _ = installed
  model_dir = project / 'runs' / gin_file
  result = run_in(project, bin_dir / 'gin-trainer', f'--gin_file={gin_file}',
                  f"--gin_param=Trainer.model_dir='runs/{gin_file}'",
                  *[f'--gin_param={binding}' for binding in bindings])
  assert result.returncode == 0, result.stderr[-3000:]
  assert_only_framework_lines(result)
  assert (model_dir / 'run_summary.json').exists()
  # TensorBoard's Scalars page: the loss and the metrics first, then the framework's groups.
  groups = tensorboard_groups(read_scalars(model_dir / 'train'))
  assert groups[-2:] == ['schedule', 'throughput'] and 'loss' in groups[:2], groups
  last = result.stderr.splitlines()[-1]
  assert re.fullmatch(rf'\d\d:\d\d:\d\d Done: .*\. Results in {re.escape(str(model_dir))} '
                      r'\(tensorboard --logdir .*\)\.', last), last
  # The user's own packages are theirs: nothing installed took their names.
  mine = run_in(project, bin_dir / 'python', '-c',
                'import models, trainer; print(models.OWNER, trainer.OWNER)')
  assert mine.stdout.strip() == 'the user the user', mine.stderr[-3000:]


def test_a_rerun_loads_its_programs_from_the_xla_cache_quietly(installed, tmp_path):
  bin_dir, project, _ = installed
  cache = tmp_path / 'xla'

  def train(name):
    result = run_in(project, bin_dir / 'gin-trainer', '--gin_file=regression.gin',
                    f"--gin_param=Trainer.model_dir='runs/{name}'",
                    '--gin_param=Trainer.train_epochs=2', '--gin_param=Trainer.jit_compile=True',
                    env={xla_cache.CACHE_ENV: str(cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert_only_framework_lines(result)
    return {path: path.stat().st_mtime_ns for path in cache.rglob('*.pb')}

  compiled = train('first')
  assert len(compiled) == 2, compiled  # The train loop and the evaluation, in one machine's folder.
  assert train('rerun') == compiled  # Loaded: nothing compiled, nothing written again.
  first, rerun = final_state(project / 'runs' / 'first'), final_state(project / 'runs' / 'rerun')
  assert first[0] == rerun[0] and first[1].keys() == rerun[1].keys()
  for key, value in first[1].items():
    np.testing.assert_array_equal(value, rerun[1][key], err_msg=key)


def test_a_users_gin_file_includes_and_imports_what_is_next_to_it(installed):
  bin_dir, project, _ = installed
  experiment = project / 'experiments'
  experiment.mkdir()
  (experiment / 'halved_loss.py').write_text(
      'import gin\n'
      'import gin_trainer\n\n\n'
      '@gin.configurable\n'
      'class HalvedLossTrainer(gin_trainer.Trainer):\n\n'
      '  def compute_loss(self, batch, training):\n'
      '    loss, scalars = super().compute_loss(batch, training)\n'
      "    return loss, {**scalars, 'half_loss': loss / 2}\n")
  (experiment / 'common.gin').write_text('Trainer.train_epochs = 2\n')
  (experiment / 'mine.gin').write_text(
      "import halved_loss\ninclude 'regression.gin'\ninclude 'common.gin'\n"
      'main.trainer_class = @HalvedLossTrainer\n')
  result = run_in(project, bin_dir / 'gin-trainer', '--gin_file=experiments/mine.gin',
                  "--gin_param=Trainer.model_dir='runs/mine'")
  assert result.returncode == 0, result.stderr[-3000:]
  assert_only_framework_lines(result)
  assert re.search(r'step 62/62 \| epoch 2/2 \| .*half_loss=', result.stderr), result.stderr
