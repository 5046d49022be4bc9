"""The compiled loop on its own: parts, evaluation means and non-finite stops, checked by numpy.

A `CompiledLoop` is built directly over unshuffled `DeviceData` (the batch of
0-based step `s` is then the `s % steps_per_epoch`-th slice of the examples),
so every sum and mean it returns can be recomputed in numpy from the arrays.
"""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from gin_trainer.data.device import DeviceData
from gin_trainer.data.pipeline import PipelineData
from gin_trainer.distribute.replicas import Replicas
from gin_trainer.errors import ConfigError, DataError, ModelError
from gin_trainer.loop import graph_loops
from gin_trainer.loop.compiled_loop import CompiledLoop
from gin_trainer.loop.xla import Xla
from gin_trainer.summaries import tags

BATCH = 4
RNG = np.random.default_rng(0)
TRAIN_X = RNG.normal(size=(23, 5)).astype(np.float32)  # 5 full batches; 3 examples dropped.
TRAIN_Y = RNG.normal(size=(23, 1)).astype(np.float32)
# Shifted per example, so the smaller last batch (3 of 11) has a mean of its own.
VAL_X = (RNG.normal(size=(11, 5)) + np.arange(11)[:, None]).astype(np.float32)
VAL_Y = RNG.normal(size=(11, 1)).astype(np.float32)
STEPS_PER_EPOCH = len(TRAIN_X) // BATCH


def batch_x(step):
  """The x of 0-based step `step`'s training batch, unshuffled."""
  first = step % STEPS_PER_EPOCH * BATCH
  return TRAIN_X[first:first + BATCH].astype(np.float64)


def mean_step(batch):
  return {'loss': tf.reduce_mean(batch[0]), 'one': tf.constant(1.0)}


def val_step(batch):
  x, _ = batch
  return {'mean_x': tf.reduce_mean(x), 'mean_square': tf.reduce_mean(tf.square(x))}


def make_loop(train_x=TRAIN_X, step=mean_step, interval=3, xla=Xla.OFF, check_finite=('loss',),
              evaluate=True):
  global_step = tf.Variable(0, dtype=tf.int64)
  train = DeviceData((train_x, TRAIN_Y), BATCH, training=True, shuffle=False)
  val = DeviceData((VAL_X, VAL_Y), BATCH, training=False) if evaluate else None
  loop = CompiledLoop(step, train, val_step if evaluate else None, val, interval, global_step,
                      check_finite, xla, Replicas(None))
  return loop, global_step


@pytest.mark.parametrize('xla', [Xla.OFF, Xla.LOOP])
def test_parts_end_at_interval_boundaries_with_numpy_sums(xla):
  loop, global_step = make_loop(xla=xla)
  assert loop.train_scalars == ['loss', 'one'] and loop.spans_intervals
  # Steps 2..10 (0-based), across an epoch end (step 5) and interval ends (3, 6, 9).
  result = loop(start_step=2, num_steps=9, evaluate=False)
  assert [end for end, _ in result.parts] == [3, 6, 9, 11]
  for (end, sums), begin in zip(result.parts, [2, 3, 6, 9]):
    expected = [sum(batch_x(s).mean() for s in range(begin, end)), end - begin]
    np.testing.assert_allclose(sums, expected, rtol=1e-5, err_msg=f'part ending at {end}')
  assert result.steps == 9 and result.non_finite is None and result.val_means == {}
  assert int(global_step.numpy()) == 11


@pytest.mark.parametrize('xla', [Xla.OFF, Xla.LOOP])
def test_evaluation_means_weigh_the_smaller_last_batch_by_its_size(xla):
  loop, _ = make_loop(xla=xla)
  result = loop(start_step=0, num_steps=3, evaluate=True)
  assert set(result.val_means) == {'mean_x', 'mean_square'}
  x = VAL_X.astype(np.float64)
  np.testing.assert_allclose(result.val_means['mean_x'], x.mean(), rtol=1e-5)
  np.testing.assert_allclose(result.val_means['mean_square'], (x ** 2).mean(), rtol=1e-5)


def test_stop_and_save_flags_come_back():
  loop, _ = make_loop(evaluate=False)
  for stop, save in ((True, False), (False, True), (False, False)):
    result = loop(start_step=0, num_steps=2, evaluate=False, stop=stop, save=save)
    assert (result.stop, result.save) == (stop, save)


@pytest.mark.parametrize('nan_example, bad_step, parts', [
    (13, 4, [3]),  # Batch 3: the 4th step, inside the second interval.
    (9, 3, []),  # Batch 2: the 3rd step, which ends the first interval.
])
@pytest.mark.parametrize('xla', [Xla.OFF, Xla.LOOP])
def test_non_finite_step_stops_the_loop_and_keeps_the_parts_before_it(xla, nan_example, bad_step,
                                                                      parts):
  train_x = TRAIN_X.copy()
  train_x[nan_example, 2] = np.nan
  # 'one' is watched first but stays finite: the name is the scalar that went bad.
  loop, global_step = make_loop(train_x=train_x, xla=xla, check_finite=('one', 'loss'),
                                evaluate=False)
  result = loop(start_step=0, num_steps=9, evaluate=False)
  step, name, value = result.non_finite
  assert (step, name) == (bad_step, 'loss') and np.isnan(value)
  assert result.steps == bad_step == int(global_step.numpy())
  assert [end for end, _ in result.parts] == parts
  for end, sums in result.parts:
    np.testing.assert_allclose(sums, [sum(batch_x(s).mean() for s in range(end)), end],
                               rtol=1e-5)


def sgd_in_numpy(weights, bias, steps, learning_rate):
  """Plain SGD on the mean squared error of x @ weights + bias: (losses, weights, bias)."""
  losses = []
  for step in steps:
    first = step % STEPS_PER_EPOCH * BATCH
    x, y = TRAIN_X[first:first + BATCH].astype(np.float64), TRAIN_Y[first:first + BATCH]
    residual = x @ weights + bias - y
    losses.append(np.mean(residual ** 2))
    weights = weights - learning_rate * 2 / BATCH * x.T @ residual
    bias = bias - learning_rate * 2 / BATCH * residual.sum(axis=0)
  return losses, weights, bias


@pytest.mark.parametrize('xla', [Xla.OFF, Xla.LOOP])
def test_a_keras_step_trains_on_the_batches_in_step_order(xla, caplog):
  caplog.set_level(logging.WARNING)
  model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
  weights = RNG.normal(size=(5, 1))
  model.set_weights([weights.astype(np.float32), np.zeros(1, np.float32)])
  optimizer = keras.optimizers.SGD(learning_rate=0.05)
  optimizer.build(model.trainable_variables)

  def step(batch):
    x, y = batch
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.square(model(x) - y))
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    return {'loss': loss}

  loop, global_step = make_loop(step=step, xla=xla, evaluate=False)
  # Two calls: the second starts mid-epoch and crosses the epoch end at step 5.
  first, second = loop(0, 4, evaluate=False), loop(4, 8, evaluate=False)
  losses, expected_weights, expected_bias = sgd_in_numpy(weights, np.zeros(1), range(12), 0.05)
  parts = [(end, sums[0]) for end, sums in first.parts + second.parts]
  assert [end for end, _ in parts] == [3, 4, 6, 9, 12]
  np.testing.assert_allclose(
      [total for _, total in parts],
      [sum(losses[0:3]), losses[3], sum(losses[4:6]), sum(losses[6:9]), sum(losses[9:12])],
      rtol=1e-4)
  kernel, bias = model.get_weights()
  np.testing.assert_allclose(kernel, expected_weights, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(bias, expected_bias, rtol=1e-4, atol=1e-6)
  assert int(global_step.numpy()) == 12
  assert not [r for r in caplog.records if 'XLA cannot compile' in r.getMessage()]


def test_iterator_data_gives_one_part_per_loop():
  train = PipelineData((TRAIN_X, TRAIN_Y), BATCH, training=True, shuffle=False)
  loop = CompiledLoop(mean_step, train, None, None, 3, tf.Variable(0, dtype=tf.int64), ['loss'],
                      Xla.STEP, Replicas(None), input_wait=tags.WAITING_FOR_INPUT)
  assert not loop.spans_intervals
  first, second = loop(0, 3, evaluate=False), loop(3, 3, evaluate=False)
  assert [end for end, _ in first.parts + second.parts] == [3, 6]
  # The seconds spent waiting for batches come last, unless a seed (of another
  # test in this process) turned on op determinism, which forbids the clock.
  timed = graph_loops.clocks_allowed()
  assert loop.train_scalars == ['loss', 'one'] + ([tags.WAITING_FOR_INPUT] if timed else [])
  np.testing.assert_allclose(first.parts[0][1][:2], [sum(batch_x(s).mean() for s in range(3)), 3],
                             rtol=1e-5)
  # The iterator reads on: steps 3, 4, then the next epoch's first batch.
  np.testing.assert_allclose(second.parts[0][1][:2],
                             [sum(batch_x(s).mean() for s in range(3, 6)), 3], rtol=1e-5)
  if timed:
    assert 0 < first.parts[0][1][2] < first.seconds


def test_unknown_watched_scalar_and_misfit_steps_are_refused():
  with pytest.raises(ConfigError, match=r"\['lost'\].*returns \['loss', 'one'\]"):
    make_loop(check_finite=('lost',))
  spec = (tf.TensorSpec([BATCH, 5]), tf.TensorSpec([BATCH, 1]))
  with pytest.raises(ModelError, match="'per_example' with shape"):
    graph_loops.scalar_specs(lambda batch: {'per_example': batch[0][:, 0]}, spec, 'train_step')
  model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, name='head')])
  # Keras's reason, without its list of the call's arguments.
  with pytest.raises(DataError, match=r"train_step fails on batches of \('float32\(4, 5\).*"
                                      r"layer 'head'.*expected axis -1 of input shape to have "
                                      r"value 3, but received input with shape \(4, 5\)\. "
                                      r'Check that the data') as raised:
    graph_loops.scalar_specs(lambda batch: {'loss': tf.reduce_mean(model(batch[0]))}, spec,
                             'train_step')
  assert 'kwargs' not in str(raised.value) and '\x1b' not in str(raised.value)
