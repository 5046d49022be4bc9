"""The benchmark's workloads: model, data, batch size and logging cadence.

Every contender trains the same model on the same examples with the same
loss; this module is the one place that says what those are.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Dict, Optional, Tuple

import keras
import tensorflow as tf

from gin_trainer import models
from gin_trainer.models import vae

SEED = 42
LEARNING_RATE = 1e-3
VAE_SIZES = {'image_shape': (28, 28), 'hidden_units': (512, 256), 'latent_dim': 16}  # vae.gin's.

Examples = Any  # A tuple of arrays (x, y), or one array of images.
Scalars = Dict[str, tf.Tensor]


@dataclasses.dataclass(frozen=True)
class Workload:
  """One benchmark setting.

  Attributes:
    name: The name given to --workloads.
    title: What the table's heading says.
    family: 'regression' or 'vae'.
    gin_file: The experiment's .gin file, as main.py is given it.
    batch_size: Examples per training step.
    evaluate: The tutorial setting: train and val scalars and an evaluation
      every epoch. Otherwise: train scalars every `summary_steps`, no
      evaluation.
    summary_steps: Train scalars every this many steps (when not `evaluate`).
    epochs: Epochs timed per contender by default (after one untimed epoch).
    peer_target: The speed-up over the fastest peer the project aims at,
      if it has one for this workload.
    steps_per_call: K, the steps of the Trainer's loops here (by default),
      which the floor runs per call too. An evaluation ends a loop (every
      epoch in the tutorial setting). Otherwise a loop spans the summary
      intervals that fit in `Trainer.seconds_per_loop` (1 s), at most 100:
      the regression's run to `Trainer.steps_per_loop` (10,000); the VAE's span
      one to three intervals, as its speed goes (the call's cost is nothing
      next to its steps).
  """

  name: str
  title: str
  family: str
  gin_file: str
  batch_size: int
  evaluate: bool
  summary_steps: Optional[int]
  epochs: int
  peer_target: Optional[float]
  steps_per_call: int


WORKLOADS = {
    workload.name: workload for workload in (
        Workload(name='a', title='(a) tutorial setting: regression, train and val scalars and '
                 'evaluation every epoch', family='regression', gin_file='regression.gin',
                 batch_size=32, evaluate=True, summary_steps=None, epochs=49, peer_target=5.0,
                 steps_per_call=31),
        Workload(name='b_regression', title='(b) throughput: regression, train scalars every '
                 '100 steps, no evaluation', family='regression', gin_file='regression.gin',
                 batch_size=32, evaluate=False, summary_steps=100, epochs=499, peer_target=None,
                 steps_per_call=10000),
        Workload(name='b_vae', title='(b) throughput: VAE, train scalars every 100 steps, no '
                 'evaluation', family='vae', gin_file='vae.gin', batch_size=128, evaluate=False,
                 summary_steps=100, epochs=9, peer_target=1.5, steps_per_call=100),
    )
}


@dataclasses.dataclass(frozen=True)
class Data:
  """A workload's examples, as its data builder returns them.

  Attributes:
    train: The whole train split (unbatched).
    val: The val split, or None when the workload does not evaluate.
  """

  train: Examples
  val: Optional[Examples]


@functools.lru_cache(maxsize=None)
def load(workload: Workload) -> Data:
  """The workload's examples, from the builders its .gin file names."""
  if workload.family == 'regression':
    train, val = models.synthetic_regression('train'), models.synthetic_regression('val')
  else:
    train, val = models.procedural_shapes('train'), models.procedural_shapes('val')
  return Data(train, val if workload.evaluate else None)


def num_examples(examples: Examples) -> int:
  """Examples in a split."""
  return len(tf.nest.flatten(examples)[0])


def steps_per_epoch(workload: Workload) -> int:
  """Whole batches per epoch (the last partial batch dropped, as the Trainer does)."""
  return num_examples(load(workload).train) // workload.batch_size


def whole_batches(examples: Examples, batch_size: int) -> Examples:
  """The examples that fill whole batches, in order."""
  end = num_examples(examples) // batch_size * batch_size
  return tf.nest.map_structure(lambda array: array[:end], examples)


def slice_batch(examples: Examples, index: int, batch_size: int) -> Examples:
  """Batch `index` of `examples`: numpy slices, the last one possibly smaller."""
  part = slice(index * batch_size, (index + 1) * batch_size)
  return tf.nest.map_structure(lambda array: array[part], examples)


def num_batches(examples: Examples, batch_size: int) -> int:
  """Batches in one pass over `examples`, keeping the last partial one."""
  return -(-num_examples(examples) // batch_size)


def build_model(workload: Workload) -> keras.Model:
  """A fresh model of the workload, with the sizes its .gin file gives."""
  if workload.family == 'regression':
    return models.RegressionModel(hidden_units=10)
  return models.VAE(**VAE_SIZES)


def build_optimizer() -> keras.optimizers.Optimizer:
  """Adam, as base.gin's `Trainer.optimizer = @adam` with the .gin files' learning rate."""
  return keras.optimizers.Adam(learning_rate=LEARNING_RATE)


def scalar_names(workload: Workload) -> Tuple[str, ...]:
  """The scalars `compute_loss` returns besides the loss."""
  return ('mae',) if workload.family == 'regression' else ('reconstruction', 'kl')


def compute_loss(workload: Workload, model: keras.Model, batch: Examples,
                 training: bool) -> Tuple[tf.Tensor, Scalars]:
  """The loss of one batch and its other scalars, as the Trainer computes them.

  Regression: mean squared error, and the mean absolute error as a metric.
  VAE: reconstruction + KL, as `models.vae.VAETrainer.compute_loss` with
  beta 1 and no warm-up.
  """
  if workload.family == 'regression':
    inputs, targets = batch
    predictions = model(inputs, training=training)
    loss = tf.reduce_mean(keras.losses.mean_squared_error(targets, predictions))
    return loss, {'mae': tf.reduce_mean(keras.losses.mean_absolute_error(targets, predictions))}
  logits, mean, log_variance = model(batch, training=training)
  reconstruction = tf.reduce_mean(vae.reconstruction_nll(batch, logits))
  kl = tf.reduce_mean(vae.kl_to_unit_gaussian(mean, log_variance))
  return reconstruction + kl, {'reconstruction': reconstruction, 'kl': kl}
