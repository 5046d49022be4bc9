"""The Trainer: a run's settings and collaborators, and the extension points of a model family."""

from __future__ import annotations

import contextlib
import random
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import gin
import keras
import tensorflow as tf
from absl import logging

from gin_trainer.config import binding_checks
# Registered with gin on import, so bindings can name @adam, @mirrored_strategy, ...
from gin_trainer.config import keras_configurables  # pylint: disable=unused-import
from gin_trainer.distribute import strategies  # pylint: disable=unused-import
from gin_trainer.data import factory
from gin_trainer.data.contract import Batches
from gin_trainer.data.examples import Examples
from gin_trainer.distribute.replicas import Replicas, replicas_in_sync
from gin_trainer.intervals import Interval
from gin_trainer.loop import precision as precision_policy
from gin_trainer.loop import xla
from gin_trainer.loop.compiled_loop import CompiledLoop
from gin_trainer.run.best_checkpoint import BestCheckpoint
from gin_trainer.run.checkpoints import Checkpoints
from gin_trainer.run.model_dir_lock import ModelDirLock
from gin_trainer.run.stop_signals import StopRequests
from gin_trainer.summaries.gradient_stats import gradient_statistics
from gin_trainer.summaries import tags
from gin_trainer.summaries.manager import SummaryManager
from gin_trainer.training_run import TrainingRun

Scalars = Dict[str, tf.Tensor]
PerExampleFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


@gin.configurable
class Trainer:
  """A custom training loop for a Keras model, configured by gin.

  A run trains in on-device loops, each ending exactly where an event is
  due (evaluation, a checkpoint); the due evaluation runs in the same call.
  Rerunning with the same `model_dir` resumes from the latest checkpoint:
  with a seed, bitwise as if uninterrupted. SIGTERM or SIGINT stops the run
  after the current loop with a checkpoint; a NaN or infinite watched
  scalar stops it without one. Checkpoints (`Checkpoints.*`), the best
  checkpoint and early stopping (`BestCheckpoint.*`) and summaries
  (`SummaryManager.*`) have bindings of their own.

  To train a new kind of model, subclass and override `compute_loss` (and,
  rarely, `train_step` or `eval_step`). Whatever scalars they return are
  logged to TensorBoard; adding a scalar is adding a dict entry.

  Args:
    model_dir: Where checkpoints, event files (train/, val/) and the
      operative config go.
    model: A Keras model class or factory, called once with no arguments
      (bind `@RegressionModel`, without parentheses).
    data: A data set builder, called as `data(split)` for `train_split`
      and `val_split`; returns unbatched examples (`trainer.data.examples`).
    optimizer: A Keras optimizer class or factory (e.g. `@adam`).
    loss: Per-example loss `fn(y_true, y_pred)` of the default
      `compute_loss`; averaged over the batch.
    metrics: Extra scalars of the default `compute_loss`, logged beside the
      loss: per-example functions `fn(y_true, y_pred)` (averaged), or Keras
      metrics (a class, `@AUC`, or an object), whose state training
      and evaluation keep apart: a train point is the metric over its
      interval's steps, a val point over the whole evaluation. With one,
      each loop ends at the next summary boundary.
    batch_size: Examples per training step.
    eval_batch_size: Examples per evaluation step (default: batch_size).
    train_steps: Train for this many steps ...
    train_epochs: ... or this many epochs (give exactly one).
    eval_every_n_steps: Evaluate every this many steps ...
    eval_every_n_epochs: ... or epochs; with neither, only at the end.
      Training always ends with an evaluation.
    eval_steps: Evaluate on the first this many batches; None: the whole split.
    steps_per_loop: The most steps one on-device loop runs.
    seconds_per_loop: With the data on the device, a loop runs as many
      whole summary intervals as fit in about this long (1 to 100); else
      each interval ends a loop. Longer loops cost less per step, shorter
      ones show points and answer a stop sooner.
    steps_per_epoch: Steps per epoch; default: training examples //
      batch_size (the last partial batch of an epoch is dropped).
    seed: Seeds Python, numpy, TensorFlow and the shuffle order, and turns
      on TensorFlow's op determinism, so runs repeat bitwise; None draws a
      shuffle seed, saved in checkpoints.
    shuffle: Reorder the training examples every epoch.
    data_on_device: Hold splits that `data` returns as arrays on the device
      and batch them in the graph; False sends them through the `tf.data`
      pipeline, as a `tf.data.Dataset` always is.
    jit_compile: Compile with XLA where it can (`trainer.loop.xla`).
    precision: The Keras dtype policy the model computes in: 'float32',
      'mixed_bfloat16' or 'mixed_float16' (variables stay float32; with
      float16 the optimizer scales the loss dynamically, and its scale is
      logged as `precision/loss_scale`). Losses and logged scalars are
      float32. A checkpoint resumes only with the precision it was trained
      with.
    profile_steps: `(first, last)`: trace global steps first..last (from
      1) with TensorFlow's profiler, for TensorBoard's Profile tab (run
      `train`); loops end at those steps, so the trace holds exactly them.
    check_finite: Train scalars that must stay finite; the run stops at the
      first step where one is NaN or infinite.
    check_data_finite: Check before training that the train and val splits
      hold no NaN or Inf; a DataError names the first.
    train_split: Split name passed to `data` for training.
    val_split: Split name passed to `data` for evaluation; None: no evaluation.
    test_split: A split evaluated once, when training ends, written to
      `model_dir/eval_<split>` (apart from val/); None: none.
    strategy: A `tf.distribute` strategy factory (`@mirrored_strategy`,
      `@multi_worker_mirrored_strategy`); None: one device. Batch sizes are
      global: results are those of one device training on the whole batch.
  """

  def __init__(self,
               model_dir: str = gin.REQUIRED,
               model: Callable[[], keras.Model] = gin.REQUIRED,
               data: Callable[[str], Examples] = gin.REQUIRED,
               optimizer: Callable[[], keras.optimizers.Optimizer] = keras.optimizers.Adam,
               loss: PerExampleFn = keras.losses.mean_squared_error,
               metrics: Optional[Mapping[str, PerExampleFn]] = None,
               batch_size: int = 32,
               eval_batch_size: Optional[int] = None,
               train_steps: Optional[int] = None,
               train_epochs: Optional[int] = None,
               eval_every_n_steps: Optional[int] = None,
               eval_every_n_epochs: Optional[int] = None,
               eval_steps: Optional[int] = None,
               steps_per_loop: int = 10000,
               seconds_per_loop: float = 1.0,
               steps_per_epoch: Optional[int] = None,
               seed: Optional[int] = None,
               shuffle: bool = True,
               data_on_device: bool = True,
               jit_compile: bool = True,
               precision: str = precision_policy.FLOAT32,
               profile_steps: Optional[Tuple[int, int]] = None,
               check_finite: Sequence[str] = ('loss',),
               check_data_finite: bool = False,
               train_split: str = 'train',
               val_split: Optional[str] = 'val',
               test_split: Optional[str] = None,
               strategy: Optional[Callable[[], tf.distribute.Strategy]] = None):
    binding_checks.positive('Trainer', batch_size=batch_size, steps_per_loop=steps_per_loop,
                            eval_batch_size=eval_batch_size, eval_steps=eval_steps,
                            steps_per_epoch=steps_per_epoch)
    binding_checks.positive_seconds('Trainer', seconds_per_loop=seconds_per_loop)
    per_example, keras_metrics = binding_checks.split_metrics(metrics or {})
    # First: a strategy must exist before TensorFlow starts, and a cluster's
    # workers must all join it before any of them may fail.
    self.replicas = Replicas(None if strategy is None else binding_checks.built(
        strategy, tf.distribute.Strategy, 'Trainer.strategy', '@mirrored_strategy'))
    self.model_dir = binding_checks.writable_model_dir(model_dir)  # Before any work.
    logging.info('model_dir: %s', self.model_dir)
    self.batch_size = batch_size
    if seed is not None:
      keras.utils.set_random_seed(seed)
      tf.config.experimental.enable_op_determinism()
    with self.replicas.scope():  # Variables created under it are mirrored on every replica.
      # Saved in checkpoints, so a resumed run keeps its shuffle order.
      self.data_seed = tf.Variable(
          seed if seed is not None else random.SystemRandom().randrange(2**31),
          dtype=tf.int64, trainable=False, name='data_seed')

    self.train_data, self.val_data = factory.splits(
        data, train_split, val_split, batch_size, eval_batch_size or batch_size, eval_steps,
        check_finite=check_data_finite, replicas=self.replicas, seed=self.data_seed,
        shuffle=shuffle, on_device=data_on_device)
    self.xla = xla.choose(jit_compile, self.replicas, self.train_data, self.val_data)

    self.steps_per_epoch = steps_per_epoch or self.train_data.steps_per_epoch
    length = Interval.from_either(('Trainer.train_steps', train_steps),
                                  ('Trainer.train_epochs', train_epochs))
    self.total_steps = length.in_steps(self.steps_per_epoch)
    eval_interval = Interval.from_either(
        ('Trainer.eval_every_n_steps', eval_every_n_steps),
        ('Trainer.eval_every_n_epochs', eval_every_n_epochs), required=False)
    self.eval_every = eval_interval.in_steps(self.steps_per_epoch) if eval_interval else None
    self.steps_per_loop = steps_per_loop
    self.seconds_per_loop = seconds_per_loop
    self.check_finite = tuple(check_finite)
    self.profile_steps = binding_checks.step_range('Trainer.profile_steps', profile_steps)
    self.checkpoints = Checkpoints(self.model_dir, self.steps_per_epoch,
                                   worker=None if self.is_chief else self.replicas.task_id)
    self.best = BestCheckpoint()

    self.precision = precision_policy.checked(precision)
    with self.replicas.scope():
      with precision_policy.policy(self.precision):
        self.model = binding_checks.built(model, keras.Model, 'Trainer.model',
                                          '@RegressionModel')
      self.optimizer = precision_policy.with_loss_scaling(binding_checks.built(
          optimizer, keras.optimizers.Optimizer, 'Trainer.optimizer', '@adam'), self.precision)
      self.summaries = SummaryManager(self.model_dir, self.steps_per_epoch, self.total_steps,
                                      batch_size)
      self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step')
    self.summaries.choose_x_axis(length.unit == 'epochs' and (
        eval_interval is None or eval_interval.unit == 'epochs'))
    self.loss = loss
    self.metrics = per_example
    with self.replicas.scope():
      # Keras metrics keep state: one copy updated by training, one by evaluation.
      self.keras_metrics = {training: {name: build() for name, build in keras_metrics.items()}
                            for training in (True, False)}
    self.data = data
    self.eval_batch_size = eval_batch_size or batch_size
    self.eval_steps = eval_steps
    self.data_on_device = data_on_device
    self.test_split = test_split
    self.test_data = self.eval_batches(test_split) if test_split is not None else None
    self._compiled_loop: Optional[CompiledLoop] = None

  # The extension points: override these for a new kind of model.

  def compute_loss(self, batch: Any, training: bool) -> Tuple[tf.Tensor, Scalars]:
    """The loss of one batch and any extra scalars to log.

    The default is supervised learning on `(inputs, targets)` batches with
    `loss` and `metrics` averaged over the batch, plus the model's own
    regularization losses (`model.losses`) in the loss; it also updates the
    Keras `Metric` objects of `metrics` (`keras_metrics[training]`). The
    model's outputs are cast to float32 first (`precision.in_float32`), as an
    override under a mixed `precision` must do too.

    Args:
      batch: One batch, as the data pipeline yields it.
      training: Whether this is a training step (passed to the model).

    Returns:
      `(loss, scalars)`: the scalar loss to minimise, and a dict of extra
      scalar tensors (means over the batch) to log beside it.
    """
    inputs, targets = batch
    predictions = precision_policy.in_float32(self.model(inputs, training=training))
    loss = tf.reduce_mean(self.loss(targets, predictions))
    if self.model.losses:
      loss += tf.add_n(self.model.losses)
    scalars = {name: tf.reduce_mean(fn(targets, predictions))
               for name, fn in self.metrics.items()}
    for metric in self.keras_metrics[training].values():
      metric.update_state(targets, predictions)
    return loss, scalars

  def train_step(self, batch: Any) -> Scalars:
    """One optimisation step: returns `loss` and the scalars to log.

    Under a strategy this runs on every replica, on its share of the global
    batch; the optimizer sums the replicas' gradients, so each replica's
    loss is divided by their number, and the sum is the gradient of the
    whole batch's mean loss. The optimizer's `scale_loss` multiplies it by
    the loss scale (float16), which `apply_gradients` divides out again. An
    override must do the same.
    """
    replicas = replicas_in_sync()
    with tf.GradientTape() as tape:
      loss, scalars = self.compute_loss(batch, training=True)
      scaled_loss = self.optimizer.scale_loss(loss / replicas if replicas > 1 else loss)
    variables = self.model.trainable_variables  # After the call that builds them.
    gradients = tape.gradient(scaled_loss, variables)
    outputs = {'loss': loss, **scalars}
    if self.summaries.gradient_stats:  # Before the optimizer updates the loss scale.
      whole = gradients
      if replicas > 1:  # The statistics of the whole batch's gradient, as on one device.
        whole = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM,
                                                               gradients)
      scale = self.optimizer.scale_loss(tf.constant(1.0))  # What scaled the gradients.
      outputs.update(gradient_statistics([g / scale for g in whole], variables))
    self.optimizer.apply_gradients(zip(gradients, variables))
    return outputs

  def eval_step(self, batch: Any) -> Scalars:
    """Scalars of one evaluation batch (means over the batch)."""
    loss, scalars = self.compute_loss(batch, training=False)
    return {'loss': loss, **scalars}

  def eval_summaries(self) -> None:
    """Writes extra summaries after each evaluation; by default none.

    Called with the val/ writer as the default writer, at the evaluation's
    step, so any `tf.summary` call here (image, histogram, text) lands in
    val/ beside the evaluation's scalars. Runs eagerly, once per evaluation.
    """

  # The run.

  @property
  def is_chief(self) -> bool:
    """Whether this process writes `model_dir`: a single process does; on a cluster, the chief."""
    return self.replicas.is_chief

  def train(self, on_start: Optional[Callable[[], None]] = None) -> Dict[str, float]:
    """Trains to the end, resuming from the latest checkpoint in `model_dir`.

    Args:
      on_start: Called once the run holds `model_dir` and has something to
        train (e.g. to record its command line there); by the chief only.

    Returns:
      The scalars of the final evaluation (of the final train interval if
      there is no validation split); {} if training had finished already.

    Raises:
      NonFiniteError: A `check_finite` scalar became NaN or infinite.
      CheckpointMismatchError: The latest checkpoint is of another model.
      ModelDirInUseError: Another process trains in `model_dir`.
      Interrupted: SIGTERM or SIGINT stopped the run (after a checkpoint).
    """
    # The chief holds model_dir while it trains.
    lock = ModelDirLock(self.model_dir) if self.is_chief else contextlib.nullcontext()
    with lock, StopRequests() as stop:
      return TrainingRun(self, stop, on_start if self.is_chief else None).run()

  def compiled_loop(self) -> CompiledLoop:
    """The loop's `tf.function`s (built once; building creates every variable)."""
    if self._compiled_loop is None:
      with self.replicas.scope():
        if self.replicas.distributed:  # A replicated step cannot create variables: build them.
          self.compute_loss(self.train_data.take(self.batch_size // self.replicas.num_replicas),
                            training=False)  # Inference: changes nothing.
          self.optimizer.build(self.model.trainable_variables)
        self._compiled_loop = CompiledLoop(
            self._train_step_and_schedule, self.train_data, self.eval_step, self.val_data,
            self.summaries.interval_steps, self.global_step, self.check_finite, self.xla,
            self.replicas, eval_metrics=self.keras_metrics[False],
            span_intervals=not self.keras_metrics[True], input_wait=tags.WAITING_FOR_INPUT)
      # Outside the scope: the interval's state is the host's, one copy, not mirrored.
      self.summaries.track(self._compiled_loop.train_scalars, self._compiled_loop.eval_scalars,
                           self.keras_metrics[True])
      self.best.check(self._compiled_loop.eval_scalars)
    return self._compiled_loop

  def eval_batches(self, split: str) -> Batches:
    """The evaluation batches of another split (e.g. 'test'), read as the val split is."""
    return factory.eval_batches(self.data(split), self.eval_batch_size, self.eval_steps,
                                replicas=self.replicas, seed=self.data_seed, shuffle=False,
                                on_device=self.data_on_device)

  def checkpoint_items(self) -> Dict[str, Any]:
    """What a checkpoint holds beside the model: every variable a resumed run needs."""
    return {'optimizer': self.optimizer, 'global_step': self.global_step,
            'data_seed': self.data_seed, **self.train_data.checkpoint_items(),
            **self.summaries.checkpoint_items(), **self.best.checkpoint_items()}

  def checkpoint_settings(self) -> Dict[str, str]:
    """Bindings a checkpoint must have been trained with to be resumed (`Checkpoints.track`)."""
    return {'Trainer.precision': self.precision}

  def _train_step_and_schedule(self, batch: Any) -> Scalars:
    learning_rate = self.optimizer.learning_rate  # The rate this step applies: read before it.
    outputs = {**self.train_step(batch), tags.LEARNING_RATE: learning_rate}
    loss_scale = precision_policy.loss_scale(self.optimizer)
    if loss_scale is not None:  # As the step left it: the next step's scale.
      outputs[tags.LOSS_SCALE] = loss_scale
    return outputs
