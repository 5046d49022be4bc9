"""Sweeps: `gin_trainer.sweep` over a grid, each run's record, and TensorBoard's HParams table."""

import json
import os
import re
import signal
import subprocess
import sys
import types

import pytest
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import hparams_plugin
from werkzeug.test import Client

from tests.conftest import ROOT, run_main, wait_for
from tests.test_readme_examples import model_dir_of, readme_commands, run_as_written
from gin_trainer.config import gin_files
from gin_trainer.summaries import hparams
from gin_trainer import sweep
from gin_trainer.summaries.event_files import read_scalars

# README.md's sweep (section "Sweeps"): 5 epochs, this 2x2 grid, in runs/sweep.
EPOCHS = 5
RUNS = {'learning_rate=0.001,batch_size=32': (1e-3, 32),
        'learning_rate=0.001,batch_size=64': (1e-3, 64),
        'learning_rate=0.003,batch_size=32': (3e-3, 32),
        'learning_rate=0.003,batch_size=64': (3e-3, 64)}


def final_val(model_dir):
  return {tag: points[-1][1] for tag, points in read_scalars(model_dir / 'val').items()}


def all_files(directory):
  return {p: p.read_bytes() for p in directory.rglob('*') if p.is_file()}


@pytest.fixture(scope='module')
def grid(tmp_path_factory):
  """README.md's `gin-trainer-sweep` command, as written, from a fresh clone's directory.

  A 2x2 grid on the regression model, two runs at a time (test_readme_examples
  leaves this command to these tests).
  """
  sweeps = [words for words in readme_commands() if words[0] == 'gin-trainer-sweep']
  assert len(sweeps) == 1, sweeps  # Another would go untested: test_readme_examples skips them.
  [words] = sweeps
  assert f'--gin_param=Trainer.train_epochs={EPOCHS}' in words, words  # What RUNS and
  assert '--root=runs/sweep' in words, words  # EPOCHS here assume.
  workdir = tmp_path_factory.mktemp('fresh_clone')
  result = run_as_written(words, workdir)
  assert result.returncode == 0, result.stdout + result.stderr[-3000:]
  assert 'Traceback' not in result.stderr and 'nothing to do' not in result.stderr
  return types.SimpleNamespace(words=words, workdir=workdir, root=workdir / model_dir_of(words),
                               result=result)


def test_the_readme_sweep_trains_every_run_to_the_end(grid):
  for name in RUNS:
    run = grid.root / name
    assert (run / 'checkpoints' / 'checkpoint').exists(), run
    assert read_scalars(run / 'val')['loss'], run
    # The first and last lines of the run say where it is, in full.
    log = (run / sweep.LOG_FILE).read_text()
    assert f'model_dir: {run}' in log and f'Results in {run}' in log
    # What the README's tree of runs/sweep/ shows.
    assert {'checkpoints', 'train', 'val', 'operative_config.gin', 'command_line.json',
            sweep.LOG_FILE} <= {path.name for path in run.iterdir()}, run
    assert list(run.glob('events.out.tfevents.*')), run


def hparams_api(root, route, request):
  """What TensorBoard's HParams dashboard gets from `route` for a logdir."""
  multiplexer = plugin_event_multiplexer.EventMultiplexer()
  multiplexer.AddRunsFromDirectory(str(root))
  multiplexer.Reload()
  context = base_plugin.TBContext(
      logdir=str(root), multiplexer=multiplexer,
      data_provider=data_provider.MultiplexerDataProvider(multiplexer, str(root)))
  app = hparams_plugin.HParamsPlugin(context).get_plugin_apps()[route]
  response = Client(app).post('/', data=json.dumps(request))
  assert response.status_code == 200, response.get_data(as_text=True)
  return json.loads(response.get_data(as_text=True))


def test_one_directory_per_combination_named_after_its_values(grid):
  root = grid.root
  assert {p.name for p in root.iterdir()} == set(RUNS)
  for name, (learning_rate, batch_size) in RUNS.items():
    operative = (root / name / 'operative_config.gin').read_text()
    assert f'adam.learning_rate = {learning_rate}' in operative
    assert f'Trainer.batch_size = {batch_size}' in operative
    assert [step for step, _ in read_scalars(root / name / 'val')['loss']] == list(
        range(1, EPOCHS + 1))


def test_each_run_records_its_command_line_and_bindings(grid):
  name = 'learning_rate=0.003,batch_size=64'
  record = json.loads((grid.root / name / 'command_line.json').read_text())
  assert record['cwd'] == str(grid.workdir)
  assert record['gin_files'] == ['regression.gin']
  model_dir = os.path.join(model_dir_of(grid.words), name)  # Relative, as the --root given.
  assert record['gin_params'] == [f'Trainer.train_epochs={EPOCHS}', 'adam.learning_rate=0.003',
                                  'Trainer.batch_size=64', f"Trainer.model_dir='{model_dir}'"]
  assert '-m gin_trainer.cli --gin_file=regression.gin' in record['command_line']


def test_hparams_table_has_one_row_per_run_with_its_values_and_final_val_scalars(grid):
  root = grid.root
  experiment = hparams_api(root, '/experiment', {})
  assert [m['displayName'] for m in experiment['metricInfos']] == ['val/loss', 'val/mae']
  assert {h['name']: h['type'] for h in experiment['hparamInfos']} == {
      'adam.learning_rate': 'DATA_TYPE_FLOAT64', 'Trainer.batch_size': 'DATA_TYPE_FLOAT64',
      'Trainer.train_epochs': 'DATA_TYPE_FLOAT64', 'Trainer.optimizer': 'DATA_TYPE_STRING'}

  by_val_loss = [{'metric': {'group': 'val', 'tag': 'loss'}, 'order': 'ORDER_ASC'}]
  groups = hparams_api(root, '/session_groups', {
      'allowedStatuses': ['STATUS_UNKNOWN'], 'colParams': by_val_loss,
      'startIndex': 0, 'sliceSize': 100})['sessionGroups']
  assert len(groups) == 4
  trials = {f'{learning_rate},{batch_size}': name
            for name, (learning_rate, batch_size) in RUNS.items()}
  assert {group['name'] for group in groups} == set(trials)  # Short and distinct: 0.001,32.
  for group in groups:
    learning_rate, batch_size = RUNS[trials[group['name']]]
    assert group['hparams'] == {'adam.learning_rate': learning_rate,
                                'Trainer.batch_size': batch_size,
                                'Trainer.train_epochs': EPOCHS,
                                'Trainer.optimizer': '@adam'}
    metrics = {v['name']['tag']: v['value'] for v in group['metricValues']}
    assert metrics == pytest.approx(final_val(root / trials[group['name']]))
  losses = [m['value'] for g in groups for m in g['metricValues'] if m['name']['tag'] == 'loss']
  assert losses == sorted(losses)


def test_prints_a_table_of_runs_and_their_final_val_scalars(grid):
  lines = grid.result.stdout.splitlines()
  assert ['run', 'status', 'val/loss', 'val/mae'] in [line.split() for line in lines]
  rows = {line.split()[0]: line.split()[1:] for line in lines
          if line.split() and line.split()[0] in RUNS}
  assert set(rows) == set(RUNS)
  for name, cells in rows.items():
    final = final_val(grid.root / name)
    assert cells == ['trained', f"{final['loss']:.4g}", f"{final['mae']:.4g}"]


def test_rerunning_a_finished_sweep_starts_no_training(grid):
  before = all_files(grid.root)
  result = run_as_written(grid.words, grid.workdir)  # The README's command, again.
  assert result.returncode == 0, result.stdout + result.stderr[-3000:]
  assert '0 to train, 4 finished before' in result.stdout
  # No main.log line, no lock taken, no second HParams record.
  assert all_files(grid.root) == before
  assert result.stdout.count('finished before') == 5  # The summary line and one row per run.


def stop_sweep(args, root, stop, runs_started):
  """Starts the sweep, stops it with `stop` once `runs_started` log a point; returns its stdout."""
  process = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
  logs = [root / name / sweep.LOG_FILE for name in runs_started]
  sizes = {log: log.stat().st_size if log.exists() else 0 for log in logs}  # Earlier runs'.
  wait_for(lambda: all(log.exists() and ' step ' in log.read_text()[sizes[log]:]
                       for log in logs), process, 'a point of every run')
  if stop == 'ctrl_c':
    os.killpg(process.pid, signal.SIGINT)  # What a terminal does: the foreground group.
  else:
    process.send_signal(signal.SIGTERM)  # What a scheduler does: the sweep alone.
  output = process.communicate(timeout=120)[0]
  assert process.returncode == {'ctrl_c': 130, 'sigterm': 143}[stop], output
  return output


def table_statuses(output):
  """The status of each run in the sweep's closing table."""
  rows = [re.match(r'(batch_size=\d+) +(interrupted|not started|trained|failed)\b', line)
          for line in output.splitlines()]
  return dict(row.groups() for row in rows if row)


def test_a_stopped_sweep_stops_every_run_and_a_rerun_resumes_them(tmp_path):
  # One step per loop, so the runs are still training when the signal comes.
  # batch_size=0 fails (last, so it fails while batch_size=128 trains).
  args = ['-m', 'gin_trainer.sweep', '--gin_file=regression.gin',
          '--gin_param=Trainer.train_epochs=None', '--gin_param=Trainer.train_steps=800',
          '--gin_param=Trainer.steps_per_loop=1', '--grid=Trainer.batch_size=[32, 64, 128, 0]',
          f'--root={tmp_path}', '--parallel=2']
  first, second = 'batch_size=32', 'batch_size=64'
  output = stop_sweep(args, tmp_path, 'ctrl_c', [first, second])
  assert table_statuses(output) == {first: 'interrupted', second: 'interrupted',
                                    'batch_size=128': 'not started',
                                    'batch_size=0': 'not started'}, output
  assert not (tmp_path / 'batch_size=128').exists() and not (tmp_path / 'batch_size=0').exists()
  stopped_at = {}
  for name in (first, second):
    text = (tmp_path / name / sweep.LOG_FILE).read_text()
    saved = re.search(r'stopped by SIGINT at step (\d+); saved \S+ckpt-(\d+)', text)
    assert saved and saved.group(1) == saved.group(2), text[-3000:]
    assert 'Traceback' not in text and 'second SIGINT' not in text  # Each got one signal.
    stopped_at[name] = int(saved.group(1))

  # The rerun resumes both; SIGTERM stops it the same way.
  output = stop_sweep(args, tmp_path, 'sigterm', [first, second])
  assert 'stopping every run (SIGTERM)' in output
  for name in (first, second):
    text = (tmp_path / name / sweep.LOG_FILE).read_text()
    assert f'Resumed at step {stopped_at[name]}' in text
    saved = re.search(r'stopped by SIGTERM at step (\d+); saved', text)
    assert saved, text[-3000:]
    stopped_at[name] = int(saved.group(1))

  # The last rerun completes the sweep but for the run that fails, and says so.
  finished = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, check=False)
  output = finished.stdout
  assert finished.returncode == 1, output + finished.stderr[-3000:]
  assert 'batch_size=0: FAILED with exit code 2' in output
  [reported] = [line for line in output.splitlines() if line.startswith('batch_size=0 failed: ')]
  assert reported.endswith('Trainer.batch_size must be a positive whole number, not 0')
  assert table_statuses(output) == {first: 'trained', second: 'trained',
                                    'batch_size=128': 'trained', 'batch_size=0': 'failed'}, output
  for name in (first, second):
    text = (tmp_path / name / sweep.LOG_FILE).read_text()
    assert f'Resumed at step {stopped_at[name]}' in text, text[-3000:]
  for size in (32, 64, 128):
    assert hparams.written(str(tmp_path / f'batch_size={size}'))
    assert read_scalars(tmp_path / f'batch_size={size}' / 'val')['loss'][-1][0] == 800
  assert not hparams.written(str(tmp_path / 'batch_size=0'))


def test_grid_values_keep_their_gin_types(tmp_path):
  runs = sweep.plan(["VAE.hidden_units=[(512, 256), (64,)]",
                     "adam.learning_rate=[1e-3, @cosine_decay()]",
                     "synthetic_regression.pure_noise=[True, 'x']"], str(tmp_path))
  assert len(runs) == 8
  assert runs[3].name == 'hidden_units=512_256,learning_rate=@cosine_decay,pure_noise=x'
  read_back = gin_files.read_bindings(runs[3].bindings)
  assert read_back == {'VAE.hidden_units': (512, 256),
                       'adam.learning_rate': gin_files.Reference('@cosine_decay()'),
                       'synthetic_regression.pure_noise': 'x'}
  assert [hparams.as_hparam(v) for v in read_back.values()] == [
      '(512, 256)', '@cosine_decay()', 'x']
  assert gin_files.read_bindings(runs[0].bindings)['synthetic_regression.pure_noise'] is True


def test_grid_directories_use_whole_keys_when_parameter_names_clash(tmp_path):
  runs = sweep.plan(['adam.learning_rate=[0.1]', 'sgd.learning_rate=[0.2]'], str(tmp_path))
  assert [run.name for run in runs] == ['adam.learning_rate=0.1,sgd.learning_rate=0.2']


@pytest.mark.parametrize('flag_value', ['adam.learning_rate=0.1', 'adam.learning_rate=[]',
                                        'adam.learning_rate=(0.1, 0.2)'])
def test_a_grid_flag_must_bind_a_list(tmp_path, flag_value):
  with pytest.raises(gin_files.BadBinding, match="give one binding to a list of values"):
    sweep.plan([flag_value], str(tmp_path))


def test_a_grid_syntax_error_names_the_flag(tmp_path):
  with pytest.raises(gin_files.BadBinding, match=r"^--grid='adam.learning_rate=\[1e-3,': EOF"):
    sweep.plan(['adam.learning_rate=[1e-3,'], str(tmp_path))


def test_a_bad_gin_param_is_one_line_naming_the_flag():
  result = run_main(['--gin_file=regression.gin', '--gin_param=Trainer.batch_size=32 64'])
  assert result.returncode == 2
  assert 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      "error: --gin_param='Trainer.batch_size=32 64': Expected newline. (column 23)")


def test_an_unknown_name_in_a_binding_names_the_flag():
  with pytest.raises(gin_files.BadBinding) as error:
    gin_files.parse(['regression.gin'], ['Trainer.batch_size=8', 'Trainer.batchsize=8'])
  assert str(error.value) == (
      "--gin_param='Trainer.batchsize=8': Configurable 'Trainer' doesn't have a parameter "
      "named 'batchsize'; did you mean 'batch_size' or 'eval_batch_size'?")
