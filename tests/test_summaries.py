"""What the SummaryManager writes, read back from the event files."""

import collections
import glob
import os
import time

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

import gin_trainer
from tests.conftest import train_regression
from gin_trainer.config import gin_files
from gin_trainer.errors import ConfigError, NonFiniteError
from gin_trainer.summaries.event_files import read_scalars, read_texts
from gin_trainer.summaries import tags


def steps_of(log_dir, tag='loss'):
  return [step for step, _ in read_scalars(log_dir)[tag]]


def scalar_event_wall_times(log_dir):
  """{step: [wall time of each event holding scalars at that step]} under `log_dir`."""
  times = collections.defaultdict(list)
  for path in glob.glob(os.path.join(log_dir, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      if any(value.metadata.plugin_data.plugin_name == 'scalars' for value in event.summary.value):
        times[event.step].append(event.wall_time)
  return dict(times)


def test_step_interval_writes_at_every_interval_end(tmp_path):
  train_regression(tmp_path, 'Trainer.train_steps = 50', 'Trainer.train_epochs = None',
                   'SummaryManager.every_n_epochs = None', 'SummaryManager.every_n_steps = 10',
                   'Trainer.eval_every_n_epochs = None', 'Trainer.eval_every_n_steps = 25')
  train = read_scalars(tmp_path / 'train')
  for tag in ('loss', 'mae', tags.LEARNING_RATE, *tags.THROUGHPUT):
    assert [step for step, _ in train[tag]] == [10, 20, 30, 40, 50], tag
  val = read_scalars(tmp_path / 'val')
  assert set(val) == {'loss', 'mae'}
  assert [step for step, _ in val['loss']] == [25, 50]


@pytest.fixture(scope='module')
def three_epochs(tmp_path_factory):
  """The directory of regression.gin trained for 3 epochs, its other settings the defaults."""
  model_dir = tmp_path_factory.mktemp('three_epochs')
  train_regression(model_dir, 'Trainer.train_epochs = 3')
  return model_dir


def test_epoch_interval_is_on_the_epoch_axis_by_default(three_epochs):
  assert steps_of(three_epochs / 'train') == [1, 2, 3]
  assert steps_of(three_epochs / 'val') == [1, 2, 3]


def test_epoch_interval_on_the_step_axis_with_one_binding(tmp_path):
  run = train_regression(tmp_path, 'Trainer.train_epochs = 3', "SummaryManager.x_axis = 'step'")
  assert run.steps_per_epoch == 31  # 1000 examples // 32, the last partial batch dropped.
  assert steps_of(tmp_path / 'train') == [31, 62, 93]
  assert steps_of(tmp_path / 'val') == [31, 62, 93]


def test_epoch_axis_that_cannot_be_kept_is_refused(tmp_path):
  with pytest.raises(ValueError, match="x_axis='step'"):
    train_regression(tmp_path, 'Trainer.train_epochs = None', 'Trainer.train_steps = 40',
                     "SummaryManager.x_axis = 'epoch'")


# Intervals inside 31-step epochs (a `while` over an epoch's parts); longer than an
# epoch (at most two parts in one; step 992 ends an interval and an epoch); of two
# whole epochs (one part).
@pytest.mark.parametrize('interval, steps, points', [(7, 30, [7, 14, 21, 28, 30]),
                                                     (32, 1000, [*range(32, 1000, 32), 1000]),
                                                     (62, 200, [62, 124, 186, 200])])
def test_points_are_the_same_whether_loops_split_intervals_or_span_them(tmp_path, interval, steps,
                                                                        points):
  bindings = ['Trainer.train_epochs = None', f'Trainer.train_steps = {steps}',
              'SummaryManager.every_n_epochs = None', f'SummaryManager.every_n_steps = {interval}',
              'Trainer.eval_every_n_epochs = None']
  train_regression(tmp_path / 'loops_of_5', *bindings, 'Trainer.steps_per_loop = 5')
  # The first loop ends at the first interval; then the speed is known, and
  # the second spans the rest (any speed fits in 1e9 seconds).
  started = time.time()
  train_regression(tmp_path / 'spanning', *bindings, 'Trainer.seconds_per_loop = 1e9')
  ended = time.time()
  short_loops = read_scalars(tmp_path / 'loops_of_5' / 'train')
  spanning = read_scalars(tmp_path / 'spanning' / 'train')
  # Every interval end, then the last partial interval at the final step.
  assert [step for step, _ in short_loops['loss']] == points
  for tag in ('loss', 'mae', tags.LEARNING_RATE):  # Loops of 5 sum an interval in two parts.
    np.testing.assert_allclose(short_loops[tag], spanning[tag], rtol=1e-6, err_msg=tag)
  # The points of one call share its throughput.
  rates = [rate for _, rate in spanning[tags.STEPS_PER_SECOND]]
  assert rates[0] != rates[1] and len(set(rates[1:])) == 1
  # A point's tags are one event, written in step order during the run.
  wall_times = scalar_event_wall_times(tmp_path / 'spanning' / 'train')
  assert sorted(wall_times) == points
  assert all(len(times) == 1 for times in wall_times.values())
  in_order = [wall_times[step][0] for step in sorted(wall_times)]
  assert started < in_order[0] and in_order == sorted(in_order) and in_order[-1] < ended


# Intervals inside epochs, longer (the overflow comes after two points), one epoch.
@pytest.mark.parametrize('interval, boundary', [(5, 30), (40, 100), (31, 30)])
def test_nan_in_a_loop_spanning_intervals_writes_those_that_ended_before_it(tmp_path, interval,
                                                                            boundary):
  # From step `boundary` on, a learning rate of 1e6 makes the loss overflow within a few steps.
  with pytest.raises(NonFiniteError) as error:
    train_regression(tmp_path, 'Trainer.train_epochs = None', 'Trainer.train_steps = 300',
                     'SummaryManager.every_n_epochs = None',
                     f'SummaryManager.every_n_steps = {interval}',
                     'Trainer.eval_every_n_epochs = None', 'Trainer.seconds_per_loop = 1e9',
                     'adam.learning_rate = @piecewise_constant_decay()',
                     f'piecewise_constant_decay.boundaries = [{boundary}]',
                     'piecewise_constant_decay.values = [1e-3, 1e6]')
  bad_step = error.value.step
  assert boundary < bad_step < 300
  losses = read_scalars(tmp_path / 'train')['loss']
  assert [step for step, _ in losses] == list(range(interval, bad_step, interval))
  assert np.all(np.isfinite([loss for _, loss in losses]))


def test_gradient_statistics_one_tag_per_trainable_variable(tmp_path):
  run = train_regression(tmp_path / 'on', 'Trainer.train_epochs = 2',
                         'SummaryManager.gradient_stats = True')
  logged_tags = set(read_scalars(tmp_path / 'on' / 'train'))
  variables = [v.path for v in run.model.trainable_variables]
  assert len(variables) == 4  # Two Dense layers: kernel and bias each.
  assert {t for t in logged_tags if t.startswith('gradients/')} == (
      {'gradients/global_norm'} | {f'gradients/variance/{path}' for path in variables})
  assert all(value > 0 for _, value in read_scalars(tmp_path / 'on' / 'train')['gradients/global_norm'])


def test_gradient_statistics_are_off_by_default(three_epochs):
  assert not [t for t in read_scalars(three_epochs / 'train') if t.startswith('gradients/')]


def test_learning_rate_of_a_schedule_is_its_mean_over_the_interval(tmp_path):
  train_regression(tmp_path, 'Trainer.train_epochs = None', 'Trainer.train_steps = 20',
                   'SummaryManager.every_n_epochs = None', 'SummaryManager.every_n_steps = 5',
                   'Trainer.eval_every_n_epochs = None',
                   'adam.learning_rate = @exponential_decay()',
                   'exponential_decay.initial_learning_rate = 0.01',
                   'exponential_decay.decay_steps = 10', 'exponential_decay.decay_rate = 0.5')
  logged = read_scalars(tmp_path / 'train')[tags.LEARNING_RATE]
  # Step s (1-based) applies the rate of optimizer iteration s - 1.
  rates = 0.01 * 0.5 ** (np.arange(20) / 10)
  expected = [(end, rates[end - 5:end].mean()) for end in (5, 10, 15, 20)]
  assert [step for step, _ in logged] == [5, 10, 15, 20]
  np.testing.assert_allclose([v for _, v in logged], [v for _, v in expected], rtol=1e-5)


def test_logged_means_equal_a_hand_computation(tmp_path):
  """Linear model, plain SGD, no shuffling: replay every step in numpy."""
  rng = np.random.default_rng(7)
  x = rng.normal(size=(12, 3)).astype(np.float32)
  y = rng.normal(size=(12, 1)).astype(np.float32)
  splits = {'train': (x[:8], y[:8]), 'val': (x[8:], y[8:])}
  learning_rate, batch = 0.1, 2
  gin.bind_parameter('Trainer.shuffle', False)
  gin.bind_parameter('SummaryManager.every_n_steps', 2)
  gin.bind_parameter('SummaryManager.gradient_stats', True)
  run = gin_trainer.Trainer(
      model_dir=str(tmp_path),
      model=lambda: keras.Sequential([keras.layers.Dense(1, kernel_initializer='zeros')]),
      data=splits.__getitem__,
      optimizer=lambda: keras.optimizers.SGD(learning_rate),
      metrics={'mae': keras.losses.mean_absolute_error},
      batch_size=batch, train_steps=8, eval_every_n_steps=4,
      eval_batch_size=3,  # 4 val examples: batches of 3 and 1, weighted by size.
      steps_per_loop=3)
  run.train()

  w, b = np.zeros((3, 1)), 0.0
  per_step = {'loss': [], 'mae': [], 'norm': [], 'var_w': [], 'var_b': []}
  val = []
  for step in range(8):
    start = (step * batch) % 8
    xb, yb = x[start:start + batch].astype(np.float64), y[start:start + batch]
    error = xb @ w + b - yb
    grad_w, grad_b = 2 * xb.T @ error / batch, 2 * error.mean()
    per_step['loss'].append((error ** 2).mean())
    per_step['mae'].append(np.abs(error).mean())
    per_step['norm'].append(np.sqrt((grad_w ** 2).sum() + grad_b ** 2))
    per_step['var_w'].append(grad_w.var())
    per_step['var_b'].append(0.0)  # The variance of a single number.
    w, b = w - learning_rate * grad_w, b - learning_rate * grad_b
    if step + 1 in (4, 8):
      val_error = splits['val'][0] @ w + b - splits['val'][1]
      val.append(((val_error ** 2).mean(), np.abs(val_error).mean()))

  logged = read_scalars(tmp_path / 'train')
  [kernel, bias] = [v.path for v in run.model.trainable_variables]
  tag_of = {'loss': 'loss', 'mae': 'mae', 'norm': 'gradients/global_norm',
         'var_w': f'gradients/variance/{kernel}', 'var_b': f'gradients/variance/{bias}'}
  for name, tag in tag_of.items():
    expected = np.array(per_step[name]).reshape(4, 2).mean(axis=1)
    assert [step for step, _ in logged[tag]] == [2, 4, 6, 8], tag
    np.testing.assert_allclose([v for _, v in logged[tag]], expected, rtol=1e-5, atol=1e-7,
                               err_msg=tag)
  np.testing.assert_allclose([v for _, v in logged[tags.LEARNING_RATE]], [learning_rate] * 4,
                             rtol=1e-6)
  logged_val = read_scalars(tmp_path / 'val')
  np.testing.assert_allclose([v for _, v in logged_val['loss']], [v[0] for v in val], rtol=1e-5)
  np.testing.assert_allclose([v for _, v in logged_val['mae']], [v[1] for v in val], rtol=1e-5)
  np.testing.assert_allclose(run.model.layers[0].kernel.numpy(), w, rtol=1e-5)


def test_operative_config_is_saved_and_logged_as_text(three_epochs):
  with open(os.path.join(three_epochs, 'operative_config.gin')) as f:
    saved = f.read()
  assert 'Trainer.train_epochs = 3' in saved
  assert "Trainer.model = @RegressionModel" in saved
  [(step, text)] = read_texts(three_epochs / 'train')['operative_config']
  assert step == 1 and 'Trainer.train_epochs = 3' in text


def test_a_run_resumes_with_other_summary_settings(tmp_path):
  by_steps = ('Trainer.train_epochs = None', 'SummaryManager.every_n_epochs = None')
  train_regression(tmp_path, *by_steps, 'Trainer.train_steps = 62',
                   'SummaryManager.every_n_steps = 31')
  # Gradient statistics add train scalars, a shorter interval moves the boundaries:
  # neither is another model, so the run resumes.
  run = train_regression(tmp_path, *by_steps, 'Trainer.train_steps = 93',
                         'SummaryManager.every_n_steps = 10', 'SummaryManager.gradient_stats = True')
  assert int(run.global_step.numpy()) == 93
  scalars = read_scalars(tmp_path / 'train')
  assert [step for step, _ in scalars['loss']] == [31, 62, 70, 80, 90, 93]
  assert [step for step, _ in scalars['gradients/global_norm']] == [70, 80, 90, 93]


def test_a_metric_that_is_no_function_nor_keras_metric_is_refused(tmp_path):
  gin_files.parse(['regression.gin'], [f'Trainer.model_dir = {str(tmp_path)!r}'])
  with pytest.raises(ConfigError, match=r"Trainer.metrics\['auc'\] is .*bind a per-example "):
    gin_trainer.Trainer(metrics={'auc': keras.layers.Dense})
  assert not (tmp_path / 'train').exists()
