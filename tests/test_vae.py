"""The VAE family: its loss terms, its scalars and images, and its data."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from gin_trainer import models
from gin_trainer import experiment
from gin_trainer.models.vae import kl_to_unit_gaussian, reconstruction_nll
from tests.conftest import run_main
from gin_trainer.config import gin_files
from gin_trainer.errors import DataError
from gin_trainer.summaries.event_files import read_image_sizes, read_scalars

SMALL = ['procedural_shapes.num_train = 512', 'procedural_shapes.num_val = 128',
         'Trainer.batch_size = 64', 'VAE.hidden_units = (128,)']


def train_vae(model_dir, *bindings):
  """Trains from vae.gin on a small data set, in this process."""
  gin.clear_config()
  gin_files.parse(['vae.gin'], [f'Trainer.model_dir = {str(model_dir)!r}', *SMALL, *bindings])
  experiment.run_experiment()  # As main.py does: vae.gin picks the VAETrainer.


def test_loss_terms_match_numpy():
  rng = np.random.default_rng(0)
  images = rng.random((3, 4, 4)).astype(np.float32)
  logits = rng.normal(size=(3, 4, 4)).astype(np.float32)
  mean = rng.normal(size=(3, 2)).astype(np.float32)
  log_variance = rng.normal(size=(3, 2)).astype(np.float32)

  probabilities = 1 / (1 + np.exp(-logits.astype(np.float64)))
  nll = -(images * np.log(probabilities) + (1 - images) * np.log(1 - probabilities))
  np.testing.assert_allclose(reconstruction_nll(images, logits), nll.sum(axis=(1, 2)), rtol=1e-5)
  variance = np.exp(log_variance.astype(np.float64))
  kl = 0.5 * (variance + mean ** 2 - 1 - np.log(variance)).sum(axis=1)
  np.testing.assert_allclose(kl_to_unit_gaussian(mean, log_variance), kl, rtol=1e-5)


def test_vae_learns_and_logs_its_terms_and_images(tmp_path):
  train_vae(tmp_path, 'Trainer.train_epochs = 3', 'VAETrainer.beta = 0.5')
  for split in ('train', 'val'):
    scalars = read_scalars(tmp_path / split)
    for tag in ('loss', 'reconstruction', 'kl', 'schedule/kl_weight'):
      assert [step for step, _ in scalars[tag]] == [1, 2, 3], (split, tag)
    loss, reconstruction, kl = ([v for _, v in scalars[t]] for t in ('loss', 'reconstruction', 'kl'))
    np.testing.assert_allclose(loss, np.add(reconstruction, np.multiply(0.5, kl)), rtol=1e-5)
    assert all(value == 0.5 for _, value in scalars['schedule/kl_weight'])
  val_loss = [v for _, v in read_scalars(tmp_path / 'val')['loss']]
  assert val_loss[-1] < val_loss[0]

  images = read_image_sizes(tmp_path / 'val')
  # One grid per evaluation: 8 inputs over their 8 reconstructions, and 8 prior samples.
  assert images['reconstructions'] == [(epoch, 8 * 28, 2 * 28) for epoch in (1, 2, 3)]
  assert images['prior_samples'] == [(epoch, 8 * 28, 28) for epoch in (1, 2, 3)]
  assert not read_image_sizes(tmp_path / 'train')
  assert len(list((tmp_path / 'val').glob('events.out.tfevents.*'))) == 1  # Scalars and images.


def test_kl_warmup_rises_linearly_to_beta(tmp_path):
  train_vae(tmp_path, 'Trainer.train_epochs = None', 'Trainer.train_steps = 12',
            'SummaryManager.every_n_epochs = None', 'SummaryManager.every_n_steps = 4',
            'Trainer.eval_every_n_epochs = None', 'VAETrainer.beta = 2.0',
            'VAETrainer.kl_warmup_steps = 8')
  logged = read_scalars(tmp_path / 'train')['schedule/kl_weight']
  weights = 2.0 * np.minimum(1.0, np.arange(12) / 8)  # Step s uses iteration s - 1.
  np.testing.assert_allclose([v for _, v in logged], weights.reshape(3, 4).mean(axis=1), rtol=1e-6)


def test_procedural_shapes_are_reproducible_images():
  images = models.procedural_shapes('val', num_train=10, num_val=20)
  assert images.shape == (20, 28, 28) and images.dtype == np.float32
  assert images.min() == 0.0 and images.max() == 1.0
  assert (images > 0.5).sum(axis=(1, 2)).min() > 10  # Every image shows a shape.
  np.testing.assert_array_equal(images, models.procedural_shapes('val', num_train=10, num_val=20))


def test_npz_images_load_a_local_file(tmp_path):
  path = tmp_path / 'mnist.npz'
  pixels = np.random.default_rng(0).integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
  np.savez(path, x_train=pixels[:4], x_test=pixels[4:], y_train=np.zeros(4))
  train = models.npz_images('train', path=str(path))
  assert train.shape == (4, 28, 28) and train.dtype == np.float32
  np.testing.assert_allclose(train, pixels[:4] / 255.0, rtol=1e-6)
  assert models.npz_images('val', path=str(path)).shape == (2, 28, 28)
  with pytest.raises(DataError, match="no array 'images' for split 'train'"):
    models.npz_images('train', path=str(path), keys={'train': 'images'})


def test_missing_npz_file_is_named_in_a_clear_error(tmp_path):
  missing = tmp_path / 'nowhere' / 'mnist.npz'
  with pytest.raises(DataError, match='npz_images.path') as error:
    models.npz_images('train', path=str(missing))
  assert str(missing) in str(error.value)


RECIPE_MODULE = '''
"""A new model family defined outside models/: the BUILD.md recipe."""
import gin
import keras
import numpy as np
import tensorflow as tf

import gin_trainer
from gin_trainer import keras_configurable


@keras_configurable
class BlobClassifier(keras.Model):
  def __init__(self, classes=3, **kwargs):
    super().__init__(**kwargs)
    self.logits = keras.layers.Dense(classes)

  def call(self, inputs, training=False):
    return self.logits(inputs)


@gin.configurable(denylist=['split'])
def blobs(split, per_class=100):
  rng = np.random.default_rng(0 if split == 'train' else 1)
  labels = np.repeat(np.arange(3), per_class)
  centers = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
  points = centers[labels] + rng.normal(size=(len(labels), 2))
  return points.astype(np.float32), labels.astype(np.int32)


@gin.configurable
class ClassifierTrainer(gin_trainer.Trainer):
  def compute_loss(self, batch, training):
    inputs, labels = batch
    logits = self.model(inputs, training=training)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
    return loss, {'accuracy': tf.reduce_mean(tf.cast(correct, tf.float32))}
'''

RECIPE_GIN = '''
import blob_recipe
include 'base.gin'

main.trainer_class = @ClassifierTrainer
Trainer.model = @BlobClassifier
Trainer.data = @blobs
Trainer.batch_size = 30
Trainer.train_steps = 60
Trainer.eval_every_n_steps = 20
SummaryManager.every_n_steps = 20
adam.learning_rate = 0.05
'''


def test_adding_a_model_needs_a_module_and_a_gin_file(tmp_path):
  (tmp_path / 'blob_recipe.py').write_text(RECIPE_MODULE)
  (tmp_path / 'blobs.gin').write_text(RECIPE_GIN)
  model_dir = tmp_path / 'run'
  result = run_main([f'--gin_file={tmp_path / "blobs.gin"}',
                     f"--gin_param=Trainer.model_dir='{model_dir}'"],
                    env={'PYTHONPATH': str(tmp_path)})
  assert result.returncode == 0, result.stderr[-3000:]
  for split in ('train', 'val'):
    accuracy = read_scalars(model_dir / split)['accuracy']
    assert [step for step, _ in accuracy] == [20, 40, 60]
  assert read_scalars(model_dir / 'val')['accuracy'][-1][1] > 0.9
  assert tf.io.gfile.exists(str(model_dir / 'checkpoints' / 'checkpoint'))
