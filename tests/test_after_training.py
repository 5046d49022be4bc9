"""After training, through main.py: evaluate a checkpoint, export it, predict with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from gin_trainer import models
from tests.conftest import ROOT, run_main, snapshot, train_regression
from gin_trainer.errors import ConfigError, DataError
from gin_trainer.restored_run import restore
from gin_trainer.run.model_dir_lock import ModelDirLock
from gin_trainer.summaries.event_files import read_scalars

EPOCHS = 3
STEPS_PER_EPOCH = 31  # 1000 examples at batch 32.


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A regression run of 3 epochs, a checkpoint each epoch, ending with a test evaluation.

  It keeps the best checkpoint by val loss; its console output is in `train.log` beside it.
  """
  model_dir = tmp_path_factory.mktemp('after') / 'run'
  result = run_main(['--gin_file=regression.gin', f'--gin_param=Trainer.model_dir="{model_dir}"',
                     f'--gin_param=Trainer.train_epochs={EPOCHS}',
                     "--gin_param=Trainer.test_split='test'",
                     "--gin_param=BestCheckpoint.monitor='mae'",
                     '--gin_param=Checkpoints.every_n_epochs=1'])
  assert result.returncode == 0, result.stderr
  (model_dir.parent / 'train.log').write_text(result.stderr)
  return model_dir


def _value_at(log_dir, step, tag='loss'):
  values = [value for at, value in read_scalars(str(log_dir))[tag] if at == step]
  assert len(values) == 1, (log_dir, step, values)
  return values[0]


def test_training_ends_with_a_test_evaluation_apart_from_val(trained):
  assert [step for step, _ in read_scalars(str(trained / 'eval_test'))['loss']] == [EPOCHS]
  assert set(read_scalars(str(trained / 'eval_test'))) == {'loss', 'mae'}
  assert [step for step, _ in read_scalars(str(trained / 'val'))['loss']] == [1, 2, 3]


def test_the_run_summary_gives_the_last_points_and_the_best_checkpoint(trained):
  summary = json.loads((trained / 'run_summary.json').read_text())
  last_step = EPOCHS * STEPS_PER_EPOCH
  assert summary['step'] == summary['steps_trained'] == last_step
  assert summary['checkpoint'] == str(trained / 'checkpoints' / f'ckpt-{last_step}')
  for split in ('train', 'val', 'eval_test'):
    points = read_scalars(str(trained / split))
    assert summary['scalars'][split]['step'] == last_step
    for tag in ('loss', 'mae'):
      assert summary['scalars'][split][tag] == pytest.approx(points[tag][-1][1], rel=1e-6)
  val_mae = read_scalars(str(trained / 'val'))['mae']
  best_epoch, best_value = min(val_mae, key=lambda point: point[1])
  best_step = best_epoch * STEPS_PER_EPOCH
  assert summary['best'] == {'scalar': 'mae', 'value': pytest.approx(best_value, rel=1e-6),
                             'step': best_step,
                             'checkpoint': str(trained / 'checkpoints' / 'best' /
                                               f'ckpt-{best_step}')}
  log = (trained.parent / 'train.log').read_text()
  assert 'Run summary:' in log and f"best        val mae {best_value:.4g} at step {best_step}" in log


def test_evaluate_the_best_checkpoint_gives_its_value(trained):
  result = run_main(['evaluate', f'--model_dir={trained}', '--checkpoint=best', '--split=val'])
  assert result.returncode == 0, result.stderr
  best = json.loads((trained / 'run_summary.json').read_text())['best']
  assert f"ckpt-{best['step']} (step {best['step']}) on val: " in result.stdout
  assert f"mae={best['value']:.4g}" in result.stdout


def test_evaluate_a_checkpoint_while_training_holds_the_run(trained, tmp_path):
  before = snapshot(trained / 'checkpoints'), snapshot(trained / 'train'), snapshot(trained / 'val')
  with ModelDirLock(str(trained)):  # As a training process in this model_dir holds it.
    result = run_main(['evaluate', f'--model_dir={trained}', '--checkpoint=ckpt-31',
                       '--split=val', '--split=test'])
  assert result.returncode == 0, result.stderr
  assert (snapshot(trained / 'checkpoints'), snapshot(trained / 'train'),
          snapshot(trained / 'val')) == before
  for tag in ('loss', 'mae'):  # The same checkpoint, the same split: the run's own evaluation.
    assert _value_at(trained / 'eval_val', 1, tag) == _value_at(trained / 'val', 1, tag)
  # Another checkpoint's evaluation is written beside the one at the end of training.
  assert sorted(step for step, _ in read_scalars(str(trained / 'eval_test'))['loss']) == [1, EPOCHS]
  assert f'ckpt-31 (step {STEPS_PER_EPOCH}) on test: loss=' in result.stdout


def test_predict_gives_the_outputs_the_evaluation_averages(trained, tmp_path):
  inputs, targets = models.synthetic_regression('test')
  np.savez(tmp_path / 'test.npz', x=inputs, y=targets)
  outputs = tmp_path / 'predictions.npy'
  result = run_main(['predict', f'--model_dir={trained}', f'--inputs={tmp_path}/test.npz:x',
                     f'--outputs={outputs}'])
  assert result.returncode == 0, result.stderr
  predictions = np.load(outputs)
  assert predictions.shape == (len(inputs), 1)
  # The end-of-training test evaluation, from the same (latest) checkpoint.
  logged_loss = _value_at(trained / 'eval_test', EPOCHS)
  assert np.mean((predictions - targets) ** 2) == pytest.approx(logged_loss, rel=1e-5)


def test_exports_reload_in_fresh_processes_with_the_same_predictions(trained, tmp_path):
  result = run_main(['export', f'--model_dir={trained}', f'--export_dir={tmp_path}/export'])
  assert result.returncode == 0, result.stderr
  inputs, _ = models.synthetic_regression('val')
  np.save(tmp_path / 'x.npy', inputs)
  expected = restore(str(trained)).predict(inputs)
  reload_saved_model = (
      'import sys, numpy as np, tensorflow as tf\n'
      'loaded = tf.saved_model.load(sys.argv[1])\n'
      'np.save(sys.argv[3], loaded.serve(np.load(sys.argv[2])).numpy())\n')
  reload_keras = (  # The shipped model's class is registered once `models` is imported.
      'import sys, numpy as np, keras, models\n'
      'model = keras.saving.load_model(sys.argv[1])\n'
      'np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))\n')
  for name, script, path, env in (
      ('saved_model', reload_saved_model, 'saved_model', {}),  # Without the project.
      ('keras', reload_keras, 'model.keras', {'PYTHONPATH': ROOT})):
    out = tmp_path / f'{name}.npy'
    reloaded = subprocess.run(
        [sys.executable, '-c', script, str(tmp_path / 'export' / path), str(tmp_path / 'x.npy'),
         str(out)], cwd=tmp_path, capture_output=True, text=True, check=False,
        env={key: value for key, value in {**os.environ, **env}.items()
             if key != 'PYTHONPATH' or env})
    assert reloaded.returncode == 0, reloaded.stderr
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-6, atol=1e-6)


def test_a_mistake_is_one_line_and_exit_2(tmp_path):
  result = run_main(['export', f'--model_dir={tmp_path}'])
  assert result.returncode == 2
  error_lines = [line for line in result.stderr.splitlines() if line.startswith('error:')]
  assert len(error_lines) == 1 and 'holds no operative_config.gin' in error_lines[0], result.stderr


def test_restore_names_the_checkpoints_a_run_has(trained):
  with pytest.raises(ConfigError, match=r"no checkpoint 'ckpt-7' in .*ckpt-31.*ckpt-93"):
    restore(str(trained), 'ckpt-7')


def test_with_an_ema_optimizer_the_restored_weights_are_the_averages(tmp_path):
  train_regression(tmp_path, 'Trainer.train_epochs = 3', 'adam.use_ema = True')
  checkpoint = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / 'checkpoints')))
  saved = {key: checkpoint.get_tensor(key) for key in checkpoint.get_variable_to_shape_map()}
  trained = restore(str(tmp_path), ema_weights=False)
  trained_weights = [v.numpy() for v in trained.model.trainable_variables]
  averaged = restore(str(tmp_path))
  averaged_weights = [v.numpy() for v in averaged.model.trainable_variables]
  for index, (raw, mean) in enumerate(zip(trained_weights, averaged_weights)):
    # The trained weights are the model's, the averages the optimizer's: as saved.
    assert any(np.array_equal(raw, value) for key, value in saved.items()
               if key.startswith('model_variables/')), index
    assert any(np.array_equal(mean, value) for key, value in saved.items()
               if key.startswith('optimizer/')), index
    assert not np.array_equal(raw, mean), index
  inputs, targets = models.synthetic_regression('val')
  assert averaged.evaluate('val')['loss'] == pytest.approx(
      np.mean((averaged.predict(inputs) - targets) ** 2), rel=1e-5)
  exported = averaged.export(str(tmp_path / 'export'))
  loaded = tf.saved_model.load(exported['saved_model'])
  served = loaded.serve(inputs).numpy()
  np.testing.assert_allclose(served, averaged.predict(inputs), rtol=1e-6, atol=1e-6)


def test_predict_refuses_inputs_the_model_cannot_take(trained):
  with pytest.raises(DataError, match=r'cannot take inputs of shape \(3, 7\): .*'):
    restore(str(trained)).predict(np.zeros((3, 7), np.float32))
