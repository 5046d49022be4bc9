"""A variational autoencoder for small images, and the Trainer that trains it."""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import gin
import keras
import tensorflow as tf

from gin_trainer import Trainer, in_float32
from gin_trainer.summaries.image_grid import image_grid
from gin_trainer.config.keras_configurables import keras_configurable

Scalars = Dict[str, tf.Tensor]


@keras_configurable
class VAE(keras.Model):
  """An MLP VAE: encoder -> (mean, log-variance) -> sample -> decoder.

  The decoder outputs Bernoulli logits per pixel; `decode` applies the
  sigmoid to give pixel probabilities.

  Args:
    image_shape: Shape of one image, e.g. (28, 28).
    hidden_units: Widths of the encoder's hidden layers (the decoder
      mirrors them).
    latent_dim: Size of the latent code.
    seed: Seed of the reparameterisation noise (None: from the global seed).
  """

  def __init__(self, image_shape: Sequence[int] = (28, 28),
               hidden_units: Sequence[int] = (512, 256), latent_dim: int = 16,
               seed: Optional[int] = None, **kwargs):
    super().__init__(**kwargs)
    # Its state is a variable of the model, so a checkpoint holds the sampling position.
    self.noise = keras.random.SeedGenerator(seed)
    self.image_shape = tuple(image_shape)
    self.latent_dim = latent_dim
    num_pixels = 1
    for size in self.image_shape:
      num_pixels *= size
    self.encoder = keras.Sequential(
        [keras.layers.Flatten()] +
        [keras.layers.Dense(units, activation='relu') for units in hidden_units] +
        [keras.layers.Dense(2 * latent_dim)], name='encoder')
    self.decoder = keras.Sequential(
        [keras.layers.Dense(units, activation='relu') for units in reversed(hidden_units)] +
        [keras.layers.Dense(num_pixels), keras.layers.Reshape(self.image_shape)], name='decoder')

  def encode(self, images: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """The posterior's mean and log-variance, each [batch, latent_dim]."""
    mean, log_variance = tf.split(self.encoder(images), 2, axis=-1)
    return mean, log_variance

  def decode(self, codes: tf.Tensor) -> tf.Tensor:
    """Pixel probabilities for latent codes."""
    return tf.sigmoid(self.decoder(codes))

  def call(self, images: tf.Tensor, training: bool = False) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Returns (reconstruction logits, posterior mean, posterior log-variance).

    While training the code is sampled with the reparameterisation trick;
    otherwise the posterior mean is decoded.
    """
    mean, log_variance = self.encode(images)
    code = mean
    if training:
      code += tf.exp(0.5 * log_variance) * keras.random.normal(tf.shape(mean), dtype=mean.dtype,
                                                                seed=self.noise)
    return self.decoder(code), mean, log_variance


def reconstruction_nll(images: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
  """Bernoulli negative log-likelihood summed over pixels, per example."""
  per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=images, logits=logits)
  return tf.reduce_sum(tf.reshape(per_pixel, [tf.shape(per_pixel)[0], -1]), axis=-1)


def kl_to_unit_gaussian(mean: tf.Tensor, log_variance: tf.Tensor) -> tf.Tensor:
  """KL(N(mean, exp(log_variance)) || N(0, I)) in closed form, per example."""
  return 0.5 * tf.reduce_sum(tf.exp(log_variance) + tf.square(mean) - 1.0 - log_variance, axis=-1)


@gin.configurable
class VAETrainer(Trainer):
  """Trains a `VAE` on batches of images by minimising the (beta-)negative ELBO.

  Logs `loss` = `reconstruction` + `kl_weight` * `kl` (each the mean over the
  batch), and `kl_weight` itself. After each evaluation, writes to val/ a
  grid of validation images above their reconstructions and a grid of
  images decoded from the prior.

  Args:
    beta: Weight of the KL term once warmed up (1 gives the ELBO).
    kl_warmup_steps: Steps over which the KL weight rises linearly from 0
      to `beta`; 0 for no warm-up.
    num_images: How many validation images (and prior samples) to show.
    **kwargs: The Trainer's arguments (bindings to `Trainer.*` apply too).
  """

  def __init__(self, beta: float = 1.0, kl_warmup_steps: int = 0, num_images: int = 8,
               **kwargs: Any):
    self.beta = beta
    self.kl_warmup_steps = kl_warmup_steps
    self.num_images = num_images
    self._shown_images: Optional[tf.Tensor] = None
    super().__init__(**kwargs)

  def kl_weight(self) -> tf.Tensor:
    """The KL weight of the current step (optimizer iterations so far)."""
    if not self.kl_warmup_steps:
      return tf.constant(self.beta, tf.float32)
    progress = tf.cast(self.optimizer.iterations, tf.float32) / self.kl_warmup_steps
    return self.beta * tf.minimum(1.0, progress)

  def compute_loss(self, batch: tf.Tensor, training: bool) -> Tuple[tf.Tensor, Scalars]:
    logits, mean, log_variance = in_float32(self.model(batch, training=training))
    reconstruction = tf.reduce_mean(reconstruction_nll(batch, logits))
    kl = tf.reduce_mean(kl_to_unit_gaussian(mean, log_variance))
    weight = self.kl_weight()
    return reconstruction + weight * kl, {
        'reconstruction': reconstruction, 'kl': kl, 'schedule/kl_weight': weight}

  def eval_summaries(self) -> None:
    if self._shown_images is None:  # The same images at every evaluation.
      self._shown_images = self.val_data.take(self.num_images)
    images = self._shown_images
    logits, _, _ = in_float32(self.model(images, training=False))
    tf.summary.image('reconstructions', image_grid(
        tf.concat([images, tf.sigmoid(logits)], axis=0), rows=2))
    codes = tf.random.stateless_normal([self.num_images, self.model.latent_dim], seed=[0, 0])
    tf.summary.image('prior_samples', image_grid(in_float32(self.model.decode(codes)), rows=1))
