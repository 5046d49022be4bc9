"""Bad input gets one clear line, a non-zero exit, and costs no data.

Every bad command runs on the `model_dir` of a real, finished short run, and
checks that its files are byte for byte as they were. Most run the command's
body in this process (`in_process`: what `main.py --gin_file ... --gin_param
...` does once it has parsed its flags), without a new process's seconds of
TensorFlow import. The others run `main.py` for real: those about the process
itself (its flags, arguments and --help), a strategy and a user's module
(which would stay in this process), a NaN (with the warning the command logs
before it), and the syntax error once more, so that the real command's exit
code and one `error:` line stay checked beside its in-process twin.
"""

import os
import re
import shlex
import subprocess
import sys

import gin
import keras
import numpy as np
import pytest

from gin_trainer import experiment
from gin_trainer.config import gin_files
from gin_trainer.run import user_errors
from gin_trainer.run.command_line import CommandLine
from tests.conftest import MAIN, ROOT, run_main, snapshot

REGRESSION = ['--gin_file=regression.gin', '--gin_param=Trainer.train_epochs=None',
              '--gin_param=Trainer.train_steps=20']
# The VAE on a small local .npz (see npz_file).
VAE_NPZ = ['--gin_file=vae.gin', '--gin_param=Trainer.data=@npz_images',
           '--gin_param=Trainer.batch_size=32', '--gin_param=Trainer.train_epochs=None',
           '--gin_param=Trainer.train_steps=4']


def main_in_process(args, capfd=None) -> subprocess.CompletedProcess:
  """Does what `main.py ARGS` does once it has parsed its flags (trainer/cli.py's `main`).

  `args` are --gin_file and --gin_param flags only (the command's other flags,
  its arguments and its --help stay with `run_main`). Runs from ROOT, as
  `run_main` does. A user's mistake ends the command with `user_errors.fail`:
  its `error:` line on stderr, then SystemExit with the exit code, taken here
  as the returncode.

  Args:
    args: The command line after `main.py`.
    capfd: pytest's capfd, to return what was written to stderr (fd 2 and
      sys.stderr) meanwhile; without it, stderr is ''.
  """
  files = [arg.split('=', 1)[1] for arg in args if arg.startswith('--gin_file=')]
  params = [arg.split('=', 1)[1] for arg in args if arg.startswith('--gin_param=')]
  assert len(files) + len(params) == len(args) and (files or params), args
  command_line = CommandLine(ROOT, shlex.join([sys.executable, MAIN, *args]), files, params)
  if capfd is not None:
    capfd.readouterr()  # Only this command's output.
  working_dir = os.getcwd()
  os.chdir(ROOT)
  # As in a new process: no bindings, and Keras names layers afresh (regression_model/dense,
  # not regression_model_1/dense_8), as a checkpoint mismatch's message shows them.
  gin.clear_config()
  keras.utils.clear_session(free_memory=False)
  try:
    with user_errors.exit_on_user_errors():
      gin_files.parse(files, params)
      experiment.run_experiment(command_line=command_line)
    returncode = 0
  except SystemExit as done:
    returncode = 0 if done.code is None else done.code
  finally:
    os.chdir(working_dir)
    gin.clear_config()
  # Every test after this one in this process still builds float32 models.
  assert keras.config.dtype_policy().name == 'float32', keras.config.dtype_policy()
  stderr = capfd.readouterr().err if capfd is not None else ''
  return subprocess.CompletedProcess([sys.executable, MAIN, *args], returncode, '', stderr)


@pytest.fixture
def in_process(capfd):
  """`main_in_process`, returning what the command wrote to stderr."""
  return lambda args: main_in_process(args, capfd)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """The model_dir of a finished 20-step regression run."""
  model_dir = tmp_path_factory.mktemp('trained')
  result = main_in_process([*REGRESSION, f"--gin_param=Trainer.model_dir='{model_dir}'"])
  assert result.returncode == 0
  assert (model_dir / 'checkpoints' / 'checkpoint').exists()
  return model_dir


def run_on(model_dir, args, run=run_main):
  """Runs main.py with `args` on `model_dir` (by `run`); checks that model_dir is unchanged."""
  before = snapshot(model_dir)
  result = run([*args, f"--gin_param=Trainer.model_dir='{model_dir}'"])
  assert snapshot(model_dir) == before, result.stderr[-2000:]
  return result


def assert_clean_failure(result, *words, exit_code=1):
  """One `error:` line holding every word, the exit code, no traceback."""
  assert result.returncode == exit_code, result.stderr[-2000:]
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  error = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
  assert len(error) == 1, result.stderr[-2000:]
  for word in words:
    assert word in error[0], error[0]
  return error[0]


# 1-3: the command line (exit 2).

def test_a_missing_gin_file_says_where_it_was_looked_for(trained, tmp_path):
  result = run_main(['--gin_file=nope.gin', f"--gin_param=Trainer.model_dir='{trained}'"],
                    cwd=str(tmp_path))
  assert_clean_failure(result, "--gin_file='nope.gin'", 'no such file', str(tmp_path / 'nope.gin'),
                       'gin_configs/nope.gin', exit_code=2)


@pytest.mark.parametrize('args, words', [
    (['--gin_fil=regression.gin'], ["Unknown command line flag 'gin_fil'", 'gin_file']),
    (['--gin_file=regression.gin', 'regression.gin'],
     ['unexpected arguments: regression.gin', '--gin_file or a --gin_param']),
])
def test_an_unknown_flag_or_a_stray_argument_is_a_usage_error(trained, args, words):
  assert_clean_failure(run_on(trained, args), *words, exit_code=2)


# The one converted check also run by a real process: the same line and exit code.
@pytest.mark.parametrize('how', ['in-process', 'subprocess'])
def test_a_syntax_error_in_a_gin_file_names_file_and_line(trained, tmp_path, in_process, how):
  bad = tmp_path / 'bad.gin'
  bad.write_text("include 'regression.gin'\n\nTrainer.batch_size = 32 64\n")
  result = run_on(trained, [f'--gin_file={bad}'], in_process if how == 'in-process' else run_main)
  assert_clean_failure(result, f'{bad}, line 3', 'Expected newline', exit_code=2)


@pytest.mark.parametrize('binding, words', [
    ('Trainr.batch_size = 8', ["No configurable matching 'Trainr'", "did you mean 'Trainer'"]),
    ('Trainer.batchsize = 8', ["doesn't have a parameter named 'batchsize'",
                               "did you mean 'batch_size'"]),
])
@pytest.mark.parametrize('given_in', ['file', 'flag'])
def test_an_unknown_name_is_named_with_the_closest_known_one(trained, tmp_path, in_process,
                                                              binding, words, given_in):
  if given_in == 'file':
    gin_file = tmp_path / 'typo.gin'
    gin_file.write_text(f"include 'regression.gin'\n{binding}\n")
    args, culprit = [f'--gin_file={gin_file}'], f'{gin_file}, line 2'
  else:
    args, culprit = [*REGRESSION, f'--gin_param={binding}'], f'--gin_param={binding!r}'
  assert_clean_failure(run_on(trained, args, in_process), culprit, *words, exit_code=2)


@pytest.mark.parametrize('args, words', [
    ([], ['nothing to run', '--gin_file=regression.gin']),
    (['--gin_file=base.gin'], ['Trainer.model_dir, Trainer.model, Trainer.data must be bound',
                               '--gin_param=\'Trainer.model_dir="runs/my_run"\'']),
    ([*REGRESSION, '--gin_param=adam.learning_rte=3e-3'],
     ["'adam' doesn't have a parameter named 'learning_rte'", "did you mean 'learning_rate'"]),
    ([*REGRESSION, '--gin_param=Trainer.model_dir=runs/x'],
     ['a string needs quotes', 'Trainer.model_dir="runs/x"']),
    ([*REGRESSION, '--strict_bindings', '--gin_param=Trainer.optimizer=@sgd'],
     ['bindings the run never uses: adam.learning_rate', 'never calls adam']),
])
def test_a_configuration_mistake_is_one_line_with_the_fix(trained, in_process, args, words):
  # A real process for no flags at all and for --strict_bindings (flags of the command).
  if args == [] or '--strict_bindings' in args:
    result = run_main(args) if args == [] else run_on(trained, args)
  elif args == ['--gin_file=base.gin']:  # Without a model_dir (nothing to write to).
    result = in_process(args)
  else:  # On the trained one (which stays as it was).
    result = run_on(trained, args, in_process)
  assert_clean_failure(result, *words, exit_code=2)


def test_help_exits_0():
  result = run_main(['--help'])
  assert result.returncode == 0, result.stderr[-2000:]
  assert '--gin_file' in result.stdout and '--[no]strict_bindings' in result.stdout


def test_nan_without_a_checkpoint_names_step_0_and_the_bound_optimizers_clipping(tmp_path):
  result = run_main([*REGRESSION, f"--gin_param=Trainer.model_dir='{tmp_path}'",
                     '--gin_param=Trainer.optimizer=@sgd', '--gin_param=sgd.learning_rate=1e6'])
  error = assert_clean_failure(result, 'at step', 'stopped without saving it',
                               'No checkpoint was saved before it, so a rerun starts from step 0',
                               "--gin_param='sgd.global_clipnorm=1.0'")
  assert 'adam' not in error
  # regression.gin's adam.learning_rate does nothing with @sgd: a warning says so.
  assert 'bindings the run never uses: adam.learning_rate' in result.stderr
  assert not (tmp_path / 'checkpoints' / 'checkpoint').exists()


BAD_STEP = """
import gin
import tensorflow as tf
import gin_trainer


@gin.configurable
class PerExampleLoss(gin_trainer.Trainer):
  def compute_loss(self, batch, training):
    inputs, targets = batch
    return tf.square(self.model(inputs, training=training) - targets)[:, 0], {}
"""


# A real process: the module it imports would stay registered with gin in this one.
def test_a_loss_that_is_not_a_scalar_is_named(trained, tmp_path):
  (tmp_path / 'bad_step.py').write_text(BAD_STEP)
  gin_file = tmp_path / 'bad.gin'
  gin_file.write_text("import bad_step\ninclude 'regression.gin'\n"
                      'main.trainer_class = @PerExampleLoss\n')
  before = snapshot(trained)
  result = run_main([f'--gin_file={gin_file}', f"--gin_param=Trainer.model_dir='{trained}'"],
                    env={'PYTHONPATH': str(tmp_path)})
  assert snapshot(trained) == before
  assert_clean_failure(result, "train_step returned 'loss' with shape (32,)", 'tf.reduce_mean')


# 4: values (exit 2, as every configuration mistake).

@pytest.mark.parametrize('bindings, words', [
    (["Trainer.batch_size='32'"], ['Trainer.batch_size', 'positive whole number', "'32'"]),
    (['Trainer.batch_size=0'], ['Trainer.batch_size', 'positive whole number', '0']),
    (['Trainer.train_steps=-5'], ['Trainer.train_steps', 'positive whole number', '-5']),
    (['Checkpoints.every_n_steps=0'], ['Checkpoints.every_n_steps',
                                             'positive whole number']),
    (['Trainer.seconds_per_loop=0'], ['Trainer.seconds_per_loop', 'seconds > 0', '0']),
    (['Trainer.train_epochs=3'], ['give Trainer.train_steps or Trainer.train_epochs, not both']),
    (['Trainer.train_steps=None'], ['give one of Trainer.train_steps or Trainer.train_epochs']),
    (['Trainer.strategy=@mirrored_strategy()'],
     ['Trainer.strategy must be a class or factory',
      'bind @mirrored_strategy without parentheses']),
])
def test_a_value_of_the_wrong_type_or_out_of_range_names_the_binding(trained, in_process,
                                                                     bindings, words):
  # A real process for the strategy: gin builds it (a MirroredStrategy, in this process's
  # TensorFlow) before the Trainer refuses it.
  run = run_main if bindings == ['Trainer.strategy=@mirrored_strategy()'] else in_process
  result = run_on(trained, [*REGRESSION, *[f'--gin_param={b}' for b in bindings]], run)
  assert_clean_failure(result, *words, exit_code=2)


# 5: model_dir.

def test_a_model_dir_that_cannot_be_created(tmp_path, in_process):
  blocker = tmp_path / 'a_file'
  blocker.write_text('not a directory')
  result = in_process(['--gin_file=regression.gin',
                       f"--gin_param=Trainer.model_dir='{blocker / 'run'}'"])
  assert_clean_failure(result, 'Trainer.model_dir', str(blocker / 'run'), 'cannot be created',
                       'writable directory', exit_code=2)
  assert blocker.read_text() == 'not a directory'


# 6-7: data.

def npz_file(path, train, val):
  np.savez(path, x_train=train, x_test=val)
  return path


def images(n, size=28):
  return np.random.default_rng(0).integers(0, 256, (n, size, size), dtype=np.uint8)


@pytest.mark.parametrize('case', ['missing', 'corrupt', 'not numbers'])
def test_a_data_file_that_is_missing_or_unreadable_is_named(trained, tmp_path, in_process, case):
  path = tmp_path / 'images.npz'
  if case == 'corrupt':
    npz_file(path, images(64), images(32))
    path.write_bytes(path.read_bytes()[:300])  # Cut short, as by a failed copy.
  elif case == 'not numbers':
    npz_file(path, np.array(['a'] * 64), images(32))
  result = run_on(trained, [*VAE_NPZ, f"--gin_param=npz_images.path='{path}'"], in_process)
  words = {'missing': ['no file at', 'Bind npz_images.path'],
           'corrupt': ['cannot be read as an .npz file', 'npz_images.path'],
           'not numbers': ["array 'x_train'", 'not numbers', 'npz_images.keys']}[case]
  assert_clean_failure(result, 'npz_images', str(path), *words)


def test_images_of_the_wrong_shape_are_named_by_shape(trained, tmp_path, in_process):
  path = npz_file(tmp_path / 'images.npz', images(64, size=20), images(32, size=20))
  result = run_on(trained, [*VAE_NPZ, f"--gin_param=npz_images.path='{path}'"], in_process)
  assert_clean_failure(result, 'train_step fails on batches of float32(32, 20, 20)',
                       'Trainer.data', 'Trainer.model')


def test_non_finite_data_is_found_when_asked(trained, tmp_path, in_process):
  val = images(32).astype(np.float32) / 255
  val[5, 3, 4] = np.nan
  val[7, 0, 0] = np.inf
  path = npz_file(tmp_path / 'images.npz', images(64), val)
  args = [*VAE_NPZ, f"--gin_param=npz_images.path='{path}'"]
  assert_clean_failure(run_on(trained, [*args, '--gin_param=Trainer.check_data_finite=True'],
                              in_process),
                       'Trainer.check_data_finite', "'val' split", '2 NaN or Inf',
                       'index (5, 3, 4)')


# 8: a checkpoint of another model.

def test_a_checkpoint_of_another_model_is_refused_naming_the_variables(trained, in_process):
  result = run_on(trained, [*REGRESSION, '--gin_param=Trainer.train_steps=40',
                            '--gin_param=RegressionModel.hidden_units=20'], in_process)
  error = assert_clean_failure(result, 'checkpoints/ckpt-20: holds another model',
                               'use a new Trainer.model_dir', 'operative_config.gin')
  details = result.stderr.split(error, 1)[1].splitlines()[1:]
  assert re.match(r'  model_variables/0 \(regression_model/dense/kernel\): shape \(5, 10\) in the '
                  r'checkpoint, \(5, 20\) now', details[0]), result.stderr[-2000:]
