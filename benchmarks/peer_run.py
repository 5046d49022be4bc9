r"""The peers of the end-to-end benchmark: each a short training script, as a user writes it.

One process trains one contender on one workload for `--epochs` epochs and
exits, as `end_to_end.py` times it:

    python -m benchmarks.peer_run --workload=regression_tfdata --contender=fit_tuned \
        --epochs=50 --model_dir=/tmp/run [--data_dir=DIR]   # DIR: images_tfrecord's shards

Every peer does the work gin-trainer does in that workload: it reads the
data the same way (`tf.data`, or numpy arrays shuffled every epoch), writes
train and val scalars every epoch to TensorBoard, validates every epoch,
prints a line per epoch and saves a checkpoint (model and optimizer) at the
end. The contenders: the TensorBoard tutorial's custom loop (`tutorial`)
and Keras `fit` with the TensorBoard callback (`fit*`, as in benchmark.py).
"""

from __future__ import annotations

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # Before TensorFlow is imported.

# pylint: disable=wrong-import-position
import dataclasses
import functools
from typing import Any, Callable, Dict, Iterable, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from benchmarks import e2e_workloads as e2e
from benchmarks import images
from benchmarks import peers
from benchmarks import workloads as wl

REGRESSION = wl.WORKLOADS['a']  # The tutorial's regression, validated every epoch.
VAE = dataclasses.replace(wl.WORKLOADS['b_vae'], name='vae_eval', evaluate=True)
IMAGES_BATCH = 128
# --contender -> Keras fit's (steps_per_execution, jit_compile); None: one epoch per execution.
FITS = {'fit': (1, False), 'fit_xla': (1, True), 'fit_tuned': (None, False),
        'fit_tuned_xla': (None, True)}

FLAGS = flags.FLAGS
flags.DEFINE_enum('workload', None, list(e2e.WORKLOADS), 'What to train.')
flags.DEFINE_enum('contender', None, [e2e.TUTORIAL, *FITS], 'How to train it.')
flags.DEFINE_integer('epochs', None, 'Epochs to train.', lower_bound=1)
flags.DEFINE_string('model_dir', None, 'Where the event files and the checkpoint go.')
flags.DEFINE_string('data_dir', None, "images_tfrecord: the TFRecord shards' directory.")
flags.mark_flags_as_required(['workload', 'contender', 'epochs', 'model_dir'])

Loss = Callable[[keras.Model, Any, bool], Tuple[tf.Tensor, Dict[str, tf.Tensor]]]


@dataclasses.dataclass(frozen=True)
class Task:
  """One workload as its peers train it.

  Attributes:
    build_model: A fresh model, for the tutorial's loop.
    compute_loss: `(model, batch, training)` -> (loss, {name: scalar}).
    scalar_names: The names `compute_loss` returns beside the loss.
    train_batches: One epoch's training batches, shuffled afresh.
    val_batches: The validation batches.
    fit_model: A fresh model for Keras fit.
    fit_compile: `model.compile`'s loss and metrics (none: the model's own steps).
    fit_data: `model.fit`'s data arguments.
    steps_per_epoch: Training steps per epoch (the tuned fit's steps per execution).
  """

  build_model: Callable[[], keras.Model]
  compute_loss: Loss
  scalar_names: Tuple[str, ...]
  train_batches: Callable[[], Iterable[Any]]
  val_batches: Callable[[], Iterable[Any]]
  fit_model: Callable[[], keras.Model]
  fit_compile: Dict[str, Any]
  fit_data: Dict[str, Any]
  steps_per_epoch: int


def regression_tfdata() -> Task:
  """The tutorial's regression through `tf.data`, as gin-trainer reads it off the device."""
  data = wl.load(REGRESSION)
  train = tf.data.Dataset.from_tensor_slices(data.train).shuffle(wl.num_examples(data.train)).batch(
      REGRESSION.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  val = tf.data.Dataset.from_tensor_slices(data.val).batch(REGRESSION.batch_size).prefetch(
      tf.data.AUTOTUNE)
  build = functools.partial(wl.build_model, REGRESSION)
  return Task(build, functools.partial(wl.compute_loss, REGRESSION), wl.scalar_names(REGRESSION),
              lambda: train, lambda: val, build, {'loss': 'mse', 'metrics': ['mae']},
              {'x': train, 'validation_data': val}, wl.steps_per_epoch(REGRESSION))


def images_loss(model: keras.Model, batch: Any, training: bool) -> Tuple[tf.Tensor,
                                                                          Dict[str, tf.Tensor]]:
  """Sparse categorical cross-entropy from logits, and accuracy, as images.gin binds them."""
  pixels, labels = batch
  logits = model(pixels, training=training)
  loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits,
                                                                     from_logits=True))
  return loss, {'accuracy': tf.reduce_mean(
      keras.metrics.sparse_categorical_accuracy(labels, logits))}


def images_tfrecord(data_dir: str) -> Task:
  """The conv net on TFRecord shards, through `tf.data` as the TF performance guide advises."""
  train = images.tfrecord_images('train', data_dir).cache().shuffle(10_000).batch(
      IMAGES_BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  val = images.tfrecord_images('val', data_dir).batch(IMAGES_BATCH).cache().prefetch(
      tf.data.AUTOTUNE)
  loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  shards, per_shard = images.SHARDS['train']
  return Task(images.ConvNet, images_loss, ('accuracy',), lambda: train, lambda: val,
              images.ConvNet, {'loss': loss, 'metrics': ['accuracy']},
              {'x': train, 'validation_data': val}, shards * per_shard // IMAGES_BATCH)


def from_arrays(workload: wl.Workload) -> Task:
  """A shipped workload from its numpy arrays: whole batches of a new permutation every epoch.

  Keras fit gets the examples that fill whole batches and shuffles them
  itself, so its epochs are gin-trainer's steps too.
  """
  data, batch_size = wl.load(workload), workload.batch_size
  steps = wl.steps_per_epoch(workload)
  rng = np.random.default_rng(wl.SEED)

  def train_batches() -> Iterable[Any]:
    order = rng.permutation(wl.num_examples(data.train))
    for index in range(steps):
      part = order[index * batch_size:(index + 1) * batch_size]
      yield tf.nest.map_structure(lambda array, part=part: array[part], data.train)

  def val_batches() -> Iterable[Any]:
    for index in range(wl.num_batches(data.val, batch_size)):
      yield wl.slice_batch(data.val, index, batch_size)

  train = wl.whole_batches(data.train, batch_size)
  if workload.family == 'regression':
    fit_model, fit_compile = functools.partial(wl.build_model, workload), {
        'loss': 'mse', 'metrics': ['mae']}
    fit_data = {'x': train[0], 'y': train[1]}
  else:
    fit_model, fit_compile, fit_data = functools.partial(peers.FitVAE, workload), {}, {'x': train}
  return Task(functools.partial(wl.build_model, workload),
              functools.partial(wl.compute_loss, workload), wl.scalar_names(workload),
              train_batches, val_batches, fit_model, fit_compile,
              {**fit_data, 'batch_size': batch_size, 'shuffle': True,
               'validation_data': data.val}, steps)


def task(workload: str, data_dir: str) -> Task:
  """The Task of a --workload."""
  if workload == 'regression_tfdata':
    return regression_tfdata()
  if workload == 'images_tfrecord':
    return images_tfrecord(data_dir)
  return from_arrays(REGRESSION if workload == 'regression_shipped' else VAE)


def save(model: keras.Model, optimizer: keras.optimizers.Optimizer, model_dir: str) -> None:
  """The checkpoint at the end, as gin-trainer writes one: model and optimizer."""
  tf.train.Checkpoint(model=model, optimizer=optimizer).write(
      os.path.join(model_dir, 'checkpoints', 'ckpt'))


def tutorial(run: Task, epochs: int, model_dir: str) -> None:
  """The TensorBoard tutorial's loop: a Python `for` over the batches calling a `tf.function` step.

  `keras.metrics.Mean` accumulators, train and val file writers, one line
  printed per epoch.
  """
  model, optimizer = run.build_model(), wl.build_optimizer()
  train_step, test_step, train_means, val_means = peers.tutorial_steps(
      model, optimizer, lambda batch, training: run.compute_loss(model, batch, training),
      ('loss', *run.scalar_names))

  train_writer = tf.summary.create_file_writer(os.path.join(model_dir, 'train'))
  val_writer = tf.summary.create_file_writer(os.path.join(model_dir, 'val'))
  for epoch in range(1, epochs + 1):
    for batch in run.train_batches():
      train_step(batch)
    for batch in run.val_batches():
      test_step(batch)
    print(f'Epoch {epoch}, ' + ', '.join(
        [f'{name}: {mean.result():.4g}' for name, mean in train_means.items()]
        + [f'val_{name}: {mean.result():.4g}' for name, mean in val_means.items()]), flush=True)
    peers.write_means(train_writer, train_means, epoch)
    peers.write_means(val_writer, val_means, epoch)
  save(model, optimizer, model_dir)


def keras_fit(run: Task, epochs: int, model_dir: str, steps_per_execution: int,
              jit_compile: bool) -> None:
  """`model.fit` with the TensorBoard callback (its defaults), one line printed per epoch."""
  model = run.fit_model()
  model.compile(optimizer=wl.build_optimizer(), steps_per_execution=steps_per_execution,
                jit_compile=jit_compile, **run.fit_compile)
  model.fit(**run.fit_data, epochs=epochs, callbacks=[keras.callbacks.TensorBoard(model_dir)],
            verbose=2)
  save(model, model.optimizer, model_dir)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if FLAGS.workload == 'images_tfrecord' and not FLAGS.data_dir:
    raise app.UsageError('images_tfrecord needs --data_dir')
  keras.utils.set_random_seed(wl.SEED)
  run = task(FLAGS.workload, FLAGS.data_dir)
  if FLAGS.contender == e2e.TUTORIAL:
    tutorial(run, FLAGS.epochs, FLAGS.model_dir)
  else:
    steps_per_execution, jit_compile = FITS[FLAGS.contender]
    keras_fit(run, FLAGS.epochs, FLAGS.model_dir, steps_per_execution or run.steps_per_epoch,
              jit_compile)


if __name__ == '__main__':
  app.run(main)
