"""Mixed precision (Trainer.precision): what a run computes in, logs, saves and resumes."""

import gin
import numpy as np
import pytest
import tensorflow as tf

import gin_trainer
from gin_trainer.config import gin_files
from gin_trainer.errors import CheckpointSettingsError, ConfigError, ModelError
from gin_trainer.summaries import tags
from gin_trainer.summaries.event_files import read_scalars
from tests.conftest import final_state, snapshot, train_regression
from tests.test_vae import train_vae

MIXED = ('mixed_bfloat16', 'mixed_float16')
# How far a mixed run's final val loss may land from float32's, relatively:
# bfloat16 keeps 8 bits of mantissa, so a loss drifts by a few percent.
TOLERANCE = 0.1


def logged_dtypes(log_dir):
  """The dtypes of every scalar in `log_dir`'s event files, as stored."""
  return {value.tensor.dtype
          for path in log_dir.glob('events.out.tfevents.*')
          for record in tf.data.TFRecordDataset(str(path))
          for value in tf.compat.v1.Event.FromString(record.numpy()).summary.value
          if value.metadata.plugin_data.plugin_name == 'scalars'}


@pytest.fixture(scope='module')
def float32_runs(tmp_path_factory):
  """The float32 runs the mixed ones are compared with: the regression's and the VAE's."""
  root = tmp_path_factory.mktemp('float32')
  regression = train_regression(root / 'regression', 'Trainer.train_epochs = 4')
  assert regression.model.hidden.dtype_policy.name == 'float32'
  # float16 skips its first steps while the loss scale drops to fit: 6 epochs of 8 steps.
  train_vae(root / 'vae', 'Trainer.train_epochs = 6')
  return root


def last(model_dir, split, tag):
  return read_scalars(model_dir / split)[tag][-1][1]


@pytest.mark.parametrize('policy', MIXED)
def test_the_regression_trains_in_mixed_precision_near_float32_and_resumes_exactly(
    tmp_path, float32_runs, policy):
  mixed = train_regression(tmp_path / 'mixed', 'Trainer.train_epochs = 4',
                           f'Trainer.precision = {policy!r}')

  assert mixed.model.hidden.dtype_policy.name == policy  # Computes in half precision ...
  assert all(v.dtype == tf.float32 for v in mixed.model.variables)  # ... on float32 variables.
  # The policy was set only while the model was built.
  assert tf.keras.config.dtype_policy().name == 'float32'
  for split in ('train', 'val'):
    assert logged_dtypes(tmp_path / 'mixed' / split) == {tf.float32.as_datatype_enum}
    assert np.isfinite(last(tmp_path / 'mixed', split, 'loss'))
    assert last(tmp_path / 'mixed', split, 'loss') == pytest.approx(
        last(float32_runs / 'regression', split, 'loss'), rel=TOLERANCE)
  train_tags = set(read_scalars(tmp_path / 'mixed' / 'train'))
  assert (tags.LOSS_SCALE in train_tags) == (policy == 'mixed_float16')
  config = (tmp_path / 'mixed' / 'operative_config.gin').read_text()
  assert f"Trainer.precision = '{policy}'" in config

  # Stopped after 2 epochs and resumed: bitwise the uninterrupted run.
  for epochs in (2, 4):
    train_regression(tmp_path / 'resumed', f'Trainer.train_epochs = {epochs}',
                     f'Trainer.precision = {policy!r}')
  name, resumed = final_state(tmp_path / 'resumed')
  expected_name, expected = final_state(tmp_path / 'mixed')
  assert name == expected_name
  assert resumed.keys() == expected.keys()
  for key, value in expected.items():
    np.testing.assert_array_equal(resumed[key], value, err_msg=key)


@pytest.mark.parametrize('policy', MIXED)
def test_the_vae_trains_in_mixed_precision_near_float32(tmp_path, float32_runs, policy):
  train_vae(tmp_path, 'Trainer.train_epochs = 6', f'Trainer.precision = {policy!r}')
  for tag in ('loss', 'reconstruction', 'kl'):
    assert last(tmp_path, 'val', tag) == pytest.approx(
        last(float32_runs / 'vae', 'val', tag), rel=TOLERANCE), tag


def test_an_overflowing_loss_scale_drops_and_the_run_goes_on(tmp_path):
  # 1.1e12 (~2**40) times the loss overflows float16 (largest 65504): the first steps' gradients
  # are infinite, so the optimizer skips them and halves the scale until they fit.
  run = train_regression(tmp_path, 'Trainer.precision = "mixed_float16"',
                         'Trainer.train_epochs = 2', 'SummaryManager.every_n_epochs = None',
                         'SummaryManager.every_n_steps = 10',
                         'loss_scale_optimizer.initial_scale = 1.1e12')
  scales = [value for _, value in read_scalars(tmp_path / 'train')[tags.LOSS_SCALE]]
  assert scales == sorted(scales, reverse=True), scales  # It only dropped ...
  assert scales[0] < 1.1e12 and scales[-1] < 2.0 ** 16, scales  # ... to where float16 fits.
  assert all(np.isfinite(value) for _, value in read_scalars(tmp_path / 'train')['loss'])
  skipped = int(run.global_step.numpy()) - int(run.optimizer.iterations.numpy())
  assert 10 <= skipped < 31  # The inner optimizer counted only the applied steps.
  assert last(tmp_path, 'val', 'loss') < read_scalars(tmp_path / 'val')['loss'][0][1]


def test_a_checkpoint_resumes_only_with_its_precision(tmp_path):
  train_regression(tmp_path, 'Trainer.train_epochs = 1', 'Trainer.precision = "mixed_bfloat16"')
  before = snapshot(tmp_path)
  for other in ('float32', 'mixed_float16'):
    with pytest.raises(CheckpointSettingsError) as error:
      train_regression(tmp_path, 'Trainer.train_epochs = 2', f'Trainer.precision = {other!r}')
    message = str(error.value)
    assert "Trainer.precision='mixed_bfloat16'" in message
    assert f'Trainer.precision={other!r}' in message
    assert 'new Trainer.model_dir' in message
  assert snapshot(tmp_path) == before


def test_an_unknown_precision_or_a_bad_profile_window_is_refused_naming_it(tmp_path):
  with pytest.raises(ConfigError, match=r"Trainer.precision is one of \('float32', "
                     r"'mixed_bfloat16', 'mixed_float16'\), not 'float16'"):
    train_regression(tmp_path, 'Trainer.precision = "float16"')
  for window in ('(5, 2)', '(0, 3)', '10', '(1.5, 3)'):
    with pytest.raises(ConfigError, match=r'Trainer.profile_steps must be \(first, last\)'):
      train_regression(tmp_path, f'Trainer.profile_steps = {window}')
  assert not (tmp_path / 'checkpoints').exists()


class HalfLoss(gin_trainer.Trainer):
  """Computes its loss from the model's float16 outputs, as an override may forget not to."""

  def compute_loss(self, batch, training):
    inputs, targets = batch
    predictions = self.model(inputs, training=training)
    return tf.reduce_mean(tf.square(predictions - tf.cast(targets, predictions.dtype))), {}


def test_a_half_precision_scalar_is_refused_with_the_fix(tmp_path):
  gin.clear_config()
  gin_files.parse(['regression.gin'], [f'Trainer.model_dir = {str(tmp_path)!r}',
                                       'Trainer.precision = "mixed_float16"'])
  with pytest.raises(ModelError, match=r"train_step returned 'loss' in float16; .*in_float32"):
    HalfLoss().compiled_loop()
