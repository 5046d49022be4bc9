"""XLA and graph loops, device and tf.data inputs: same results, whichever runs."""

import logging

import gin
import numpy as np
import pytest
import tensorflow as tf

from gin_trainer import models
import gin_trainer
from tests.conftest import train_regression
from gin_trainer.summaries.event_files import read_scalars
from gin_trainer.summaries import tags

FIVE_EPOCHS = ['Trainer.train_epochs = 5']


def logged(model_dir):
  return {split: read_scalars(model_dir / split) for split in ('train', 'val')}


def assert_same_curves(a, b, rtol):
  for split in ('train', 'val'):
    for tag in ('loss', 'mae'):
      steps_a, values_a = zip(*a[split][tag])
      steps_b, values_b = zip(*b[split][tag])
      assert steps_a == steps_b, (split, tag)
      np.testing.assert_allclose(values_a, values_b, rtol=rtol, err_msg=f'{split}/{tag}')


# Points every epoch (one part per epoch), and every 45 steps (two parts in some epochs);
# through tf.data, XLA compiles the step alone.
@pytest.mark.parametrize('bindings', [
    [], ['SummaryManager.every_n_epochs = None', 'SummaryManager.every_n_steps = 45'],
    ['Trainer.data_on_device = False']], ids=['epochs', 'steps', 'tf_data'])
def test_xla_and_graph_loops_agree(tmp_path, bindings):
  xla = train_regression(tmp_path / 'xla', *FIVE_EPOCHS, *bindings, 'Trainer.jit_compile = True')
  graph = train_regression(tmp_path / 'graph', *FIVE_EPOCHS, *bindings,
                           'Trainer.jit_compile = False')
  # Same batches in the same order; only float rounding may differ (seen: 3e-7).
  assert_same_curves(logged(tmp_path / 'xla'), logged(tmp_path / 'graph'), rtol=1e-5)
  for a, b in zip(xla.model.trainable_variables, graph.model.trainable_variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def test_tf_data_pipeline_trains_like_device_data_and_a_seed_repeats_it_exactly(tmp_path):
  runs = [train_regression(tmp_path / name, *FIVE_EPOCHS, 'Trainer.data_on_device = False')
          for name in ('pipeline', 'again')]
  curves = logged(tmp_path / 'pipeline')
  assert [step for step, _ in curves['train']['loss']] == [1, 2, 3, 4, 5]
  val_loss = [value for _, value in curves['val']['loss']]
  assert val_loss[-1] < 0.7 * val_loss[0]
  assert set(curves['train']) == {'loss', 'mae', tags.LEARNING_RATE, *tags.THROUGHPUT}
  # regression.gin's seed: the same shuffles and initial weights, so the same numbers.
  assert_same_curves(curves, logged(tmp_path / 'again'), rtol=0)
  for a, b in zip(*(run.model.trainable_variables for run in runs)):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_dataset_builder_runs_with_the_step_compiled_alone(tmp_path, caplog):
  caplog.set_level(logging.WARNING)
  def dataset_builder(split):
    return tf.data.Dataset.from_tensor_slices(models.synthetic_regression(split))

  run = gin_trainer.Trainer(model_dir=str(tmp_path), model=models.RegressionModel,
                        data=dataset_builder, train_epochs=2, eval_every_n_epochs=1,
                        jit_compile=True)
  assert run.steps_per_epoch == 31
  final = run.train()
  assert set(final) == {'loss'} and np.isfinite(final['loss'])
  assert [step for step, _ in read_scalars(tmp_path / 'val')['loss']] == [31, 62]
  # XLA took the step, a batch (x, y): nothing fell back to a graph.
  assert not [r for r in caplog.records if 'XLA cannot compile' in r.getMessage()]


@gin.configurable
class HostCallTrainer(gin_trainer.Trainer):
  """A loss with a host callback (tf.py_function), which XLA cannot compile."""

  def compute_loss(self, batch, training):
    loss, scalars = super().compute_loss(batch, training)
    twice = tf.py_function(lambda value: 2 * value, [loss], tf.float32)
    twice.set_shape([])
    return loss, {**scalars, 'twice_loss': twice}


def test_an_op_xla_cannot_compile_falls_back_to_a_graph_with_a_warning(tmp_path, caplog):
  caplog.set_level(logging.WARNING)
  run = HostCallTrainer(model_dir=str(tmp_path), model=models.RegressionModel,
                        data=models.synthetic_regression, train_steps=20, jit_compile=True)
  run.train()
  warnings = [r.getMessage() for r in caplog.records if 'XLA cannot compile' in r.getMessage()]
  # One for each function the run uses: the train loop, and the evaluation.
  assert [w.split(" (")[0] for w in warnings] == [
      "Trainer.jit_compile: XLA cannot compile the loop",
      "Trainer.jit_compile: XLA cannot compile the evaluation"], warnings
  train = read_scalars(tmp_path / 'train')
  np.testing.assert_allclose([v for _, v in train['twice_loss']],
                             [2 * v for _, v in train['loss']], rtol=1e-6)
