"""What gin-trainer is measured against: Keras fit, the tutorial's loop, the floor.

Each function trains a fresh model of a workload for one untimed epoch and
then `epochs` timed epochs (or as many steps), and returns the steady-state
training speed in steps per second.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

import keras
import tensorflow as tf

from benchmarks import workloads as wl
from benchmarks.workloads import Workload

MIN_SECONDS = 0.5  # The least time a fast contender is timed over (`time_loop`, gin-trainer).


def steady_rate(epoch_ends: Sequence[float], steps_per_epoch: int) -> float:
  """Steps per second between the end of the first epoch and the end of the last."""
  return (len(epoch_ends) - 1) * steps_per_epoch / (epoch_ends[-1] - epoch_ends[0])


def time_loop(call: Callable[[int], tf.Tensor], steps_per_call: int, steps: int) -> float:
  """Steps per second of `call(first_step)`, K steps a call, after one untimed call.

  The `steps` are timed as many times as it takes to fill `MIN_SECONDS`,
  so that fast loops are not timed over a few milliseconds.

  Args:
    call: Runs `steps_per_call` steps from global step `first_step`;
      returns a tensor, read after each pass to wait for the device.
    steps_per_call: K, the steps of one call.
    steps: Steps of one timed pass, rounded up to whole calls.

  Returns:
    Timed steps per second (the untimed call traces and compiles).
  """
  call(0).numpy()
  calls_per_pass = max(1, -(-steps // steps_per_call))
  calls = 0
  start = time.perf_counter()
  while calls == 0 or time.perf_counter() - start < MIN_SECONDS:
    for _ in range(calls_per_pass):
      calls += 1
      result = call(calls * steps_per_call)
    result.numpy()
  return calls * steps_per_call / (time.perf_counter() - start)


class _EpochEnds(keras.callbacks.Callback):
  """Records when each epoch ends, after the callbacks listed before it."""

  def __init__(self):
    super().__init__()
    self.times: List[float] = []

  def on_epoch_end(self, epoch, logs=None):
    self.times.append(time.perf_counter())


class FitVAE(keras.Model):
  """The Keras VAE example's pattern: `models.VAE` trained by a custom `train_step`.

  Args:
    workload: The VAE workload (its model sizes and loss).
  """

  def __init__(self, workload: Workload, **kwargs):
    super().__init__(**kwargs)
    self.workload = workload
    self.vae = wl.build_model(workload)
    self.trackers = [keras.metrics.Mean(name) for name in ('loss', *wl.scalar_names(workload))]

  @property
  def metrics(self) -> List[keras.metrics.Metric]:
    return self.trackers

  def call(self, images, training=False):
    return self.vae(images, training=training)

  def train_step(self, images):
    with tf.GradientTape() as tape:
      loss, scalars = wl.compute_loss(self.workload, self.vae, images, training=True)
    gradients = tape.gradient(loss, self.vae.trainable_variables)
    self.optimizer.apply_gradients(zip(gradients, self.vae.trainable_variables))
    return self._track(loss, scalars)

  def test_step(self, images):
    """Validation (`fit(validation_data=...)`): the same scalars, without training."""
    return self._track(*wl.compute_loss(self.workload, self.vae, images, training=False))

  def _track(self, loss: tf.Tensor, scalars: wl.Scalars) -> Dict[str, tf.Tensor]:
    for tracker, value in zip(self.trackers, (loss, *scalars.values())):
      tracker.update_state(value)
    return {tracker.name: tracker.result() for tracker in self.trackers}


def keras_fit(workload: Workload, epochs: int, steps_per_execution: int,
              jit_compile: bool) -> float:
  """`model.fit` with the TensorBoard callback; epoch ends timed by a callback.

  Regression compiles `loss='mse', metrics=['mae']`; the VAE is `FitVAE`.
  The tutorial setting validates every epoch; the throughput setting
  writes batch scalars every `summary_steps` (Keras counts one "batch" per
  execution of `steps_per_execution` steps).
  """
  keras.utils.set_random_seed(wl.SEED)
  data = wl.load(workload)
  train = wl.whole_batches(data.train, workload.batch_size)  # As the Trainer's epochs.
  if workload.family == 'regression':
    model = wl.build_model(workload)
    model.compile(optimizer=wl.build_optimizer(), loss='mse', metrics=['mae'],
                  steps_per_execution=steps_per_execution, jit_compile=jit_compile)
    inputs, targets = train
  else:
    model = FitVAE(workload)
    model.compile(optimizer=wl.build_optimizer(), steps_per_execution=steps_per_execution,
                  jit_compile=jit_compile)
    inputs, targets = train, None
  epoch_ends = _EpochEnds()
  with tempfile.TemporaryDirectory() as log_dir:
    tensorboard = keras.callbacks.TensorBoard(
        log_dir, update_freq='epoch' if workload.evaluate else workload.summary_steps)
    model.fit(inputs, targets, batch_size=workload.batch_size, epochs=1 + epochs,
              validation_data=data.val, callbacks=[tensorboard, epoch_ends], verbose=0)
  return steady_rate(epoch_ends.times, wl.steps_per_epoch(workload))


def write_means(writer: tf.summary.SummaryWriter, means: Dict[str, keras.metrics.Mean],
                step: int) -> None:
  """Writes each mean's result as a scalar at `step`, then resets it."""
  with writer.as_default():
    for name, mean in means.items():
      tf.summary.scalar(name, mean.result(), step=step)
      mean.reset_state()


def tutorial_steps(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                   compute_loss: Callable[[Any, bool], Tuple[tf.Tensor, Dict[str, tf.Tensor]]],
                   names: Sequence[str]) -> Tuple[Callable[[Any], None], Callable[[Any], None],
                                                  Dict[str, keras.metrics.Mean],
                                                  Dict[str, keras.metrics.Mean]]:
  """The TensorBoard tutorial's steps: a `tf.function` each, training or evaluating one batch.

  Args:
    model: The model.
    optimizer: Its optimizer.
    compute_loss: (batch, training) -> (loss, {name: scalar}).
    names: 'loss' and the scalars' names.

  Returns:
    `train_step(batch)` (GradientTape, apply_gradients), `test_step(batch)`,
    and the `keras.metrics.Mean` each adds its loss and scalars to (train, val).
  """
  train_means = {name: keras.metrics.Mean(name) for name in names}
  val_means = {name: keras.metrics.Mean(name) for name in names}

  @tf.function
  def train_step(batch):
    with tf.GradientTape() as tape:
      loss, scalars = compute_loss(batch, True)
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    for name, value in {'loss': loss, **scalars}.items():
      train_means[name].update_state(value)

  @tf.function
  def test_step(batch):
    loss, scalars = compute_loss(batch, False)
    for name, value in {'loss': loss, **scalars}.items():
      val_means[name].update_state(value)

  return train_step, test_step, train_means, val_means


def tutorial_loop(workload: Workload, epochs: int) -> float:
  """The TensorBoard tutorial's custom loop, over numpy slices of the data.

  A `tf.function` train step (GradientTape, apply_gradients, `Mean`
  accumulators) called once per batch from a Python loop; train and val
  file writers. Tutorial setting: scalars and an evaluation over the val
  split every epoch. Throughput setting: train scalars every
  `summary_steps` steps, no evaluation.
  """
  keras.utils.set_random_seed(wl.SEED)
  data = wl.load(workload)
  model, optimizer = wl.build_model(workload), wl.build_optimizer()
  train_step, test_step, train_means, val_means = tutorial_steps(
      model, optimizer, lambda batch, training: wl.compute_loss(workload, model, batch, training),
      ('loss', *wl.scalar_names(workload)))

  steps_per_epoch, batch_size = wl.steps_per_epoch(workload), workload.batch_size
  epoch_ends = []
  step = 0
  with tempfile.TemporaryDirectory() as log_dir:
    train_writer = tf.summary.create_file_writer(os.path.join(log_dir, 'train'))
    val_writer = tf.summary.create_file_writer(os.path.join(log_dir, 'val'))
    for epoch in range(1, epochs + 2):
      for index in range(steps_per_epoch):
        train_step(wl.slice_batch(data.train, index, batch_size))
        step += 1
        if not workload.evaluate and step % workload.summary_steps == 0:
          write_means(train_writer, train_means, step)
      if workload.evaluate:
        write_means(train_writer, train_means, epoch)
        for index in range(wl.num_batches(data.val, batch_size)):
          test_step(wl.slice_batch(data.val, index, batch_size))
        write_means(val_writer, val_means, epoch)
      epoch_ends.append(time.perf_counter())
    train_writer.close()
    val_writer.close()
  return steady_rate(epoch_ends, steps_per_epoch)


def floor(workload: Workload, epochs: int, jit_compile: bool) -> float:
  """The least work a loop can do: K steps per `tf.function` call, nothing else.

  The train split is one device tensor of shape [steps_per_epoch, batch,
  ...]; step i trains on batch i mod steps_per_epoch, gathered in the
  graph. The step is the workload's loss, its gradient and the Adam update;
  no metrics, no summaries, no shuffling.
  """
  keras.utils.set_random_seed(wl.SEED)
  model, optimizer = wl.build_model(workload), wl.build_optimizer()
  steps_per_epoch, batch_size = wl.steps_per_epoch(workload), workload.batch_size
  batches = tf.nest.map_structure(
      lambda array: tf.constant(array.reshape(steps_per_epoch, batch_size, *array.shape[1:])),
      wl.whole_batches(wl.load(workload).train, batch_size))
  first_batch = wl.slice_batch(wl.load(workload).train, 0, batch_size)
  model(tf.nest.flatten(first_batch)[0])  # Creates the variables; the inputs are x, or the images.
  optimizer.build(model.trainable_variables)
  steps_per_call = workload.steps_per_call

  @tf.function(jit_compile=jit_compile)
  def loop(first_step):
    loss = tf.constant(0.0)
    for i in tf.range(tf.constant(steps_per_call, tf.int64)):
      index = (first_step + i) % steps_per_epoch
      batch = tf.nest.map_structure(lambda array: tf.gather(array, index), batches)
      with tf.GradientTape() as tape:
        loss, _ = wl.compute_loss(workload, model, batch, training=True)
      gradients = tape.gradient(loss, model.trainable_variables)
      optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    return loss

  return time_loop(lambda first_step: loop(tf.constant(first_step, tf.int64)), steps_per_call,
                   epochs * steps_per_epoch)
