"""The data contract: DeviceData and PipelineData read the same arrays alike, as `Batches` says.

Each test builds both readers from the same arrays, unshuffled, so what
they read can be compared with each other and with numpy slices.
"""

import inspect

import numpy as np
import pytest
import tensorflow as tf

from gin_trainer.data import factory
from gin_trainer.data.contract import Batches
from gin_trainer.data.device import DeviceData
from gin_trainer.data.pipeline import PipelineData
from gin_trainer.distribute.replicas import Replicas

BATCH = 4
NUM = 23  # 5 full batches and 3 examples.
# Column 0 is each example's index, so a batch says which examples it holds.
X = np.hstack([np.arange(NUM)[:, None], np.random.default_rng(1).normal(size=(NUM, 4))]
              ).astype(np.float32)
Y = (np.arange(NUM, dtype=np.float32) * 10)[:, None]
READERS = {'device': DeviceData, 'pipeline': PipelineData}


def reader(kind, training, examples=(X, Y)):
  return READERS[kind](examples, BATCH, training=training, shuffle=False)


def training_indices(data, num_steps):
  """The example indices of steps 0..num_steps-1, read in a graph as the train loop reads them."""

  @tf.function
  def read():
    state, segment_end = data.start(tf.constant(0, tf.int64)), data.segment_end(
        tf.constant(0, tf.int64))
    batches = []
    for step in range(num_steps):  # Unrolled: a new state at each segment end.
      step = tf.constant(step, tf.int64)
      if data.segmented and step == segment_end:
        state, segment_end = data.start(step), data.segment_end(step)
      batches.append(data.next(state, step)[0][:, 0])
    return tf.stack(batches)

  return read().numpy().astype(int).tolist()


def test_both_readers_implement_everything_the_protocol_declares():
  attributes = list(Batches.__annotations__)
  methods = {name: value for name, value in vars(Batches).items()
             if inspect.isfunction(value) and not name.startswith('_')}
  assert attributes == ['element_spec', 'steps_per_epoch', 'compilable', 'segmented', 'streamed']
  assert set(methods) == {'start', 'segment_end', 'next', 'fold', 'take', 'seek',
                          'checkpoint_items'}
  for kind in READERS:
    for training in (True, False):
      data = reader(kind, training)
      for name in attributes:
        assert hasattr(data, name), (kind, name)
      for name, declared in methods.items():
        implemented = getattr(data, name)
        # Bound: the declared parameters but `self`.
        assert (len(inspect.signature(implemented).parameters) ==
                len(inspect.signature(declared).parameters) - 1), (kind, name)


def test_steps_per_epoch_drops_the_partial_batch_only_for_training():
  for kind in READERS:
    assert reader(kind, training=True).steps_per_epoch == NUM // BATCH, kind
    assert reader(kind, training=False).steps_per_epoch == -(-NUM // BATCH), kind
  dataset = tf.data.Dataset.from_tensor_slices((X, Y))
  assert PipelineData(dataset, BATCH, training=True).steps_per_epoch == 5
  assert PipelineData(dataset.filter(lambda x, y: True), BATCH,
                      training=True).steps_per_epoch is None


def test_training_batches_have_the_same_spec_and_order():
  device, pipeline = reader('device', True), reader('pipeline', True)
  expected_spec = (tf.TensorSpec([BATCH, 5], tf.float32), tf.TensorSpec([BATCH, 1], tf.float32))
  assert device.element_spec == expected_spec and pipeline.element_spec == expected_spec
  # Twelve steps: two epochs and two steps, each epoch without examples 20..22.
  epoch = [list(range(first, first + BATCH)) for first in range(0, 20, BATCH)]
  assert training_indices(device, 12) == epoch + epoch + epoch[:2]
  assert training_indices(pipeline, 12) == epoch + epoch + epoch[:2]


# A pipeline of known size reads every evaluation from one iterator; of unknown size, afresh.
UNKNOWN_SIZE = tf.data.Dataset.from_tensor_slices((X, Y)).filter(lambda x, y: True)


@pytest.mark.parametrize('kind', [*READERS, 'unknown_size'])
def test_evaluation_fold_sees_every_example_once_in_order_at_every_evaluation(kind):
  data = (PipelineData(UNKNOWN_SIZE, BATCH, training=False) if kind == 'unknown_size'
          else reader(kind, training=False))

  def add_batch(carry, batch):
    seen, batches, last, in_order = carry
    indices = tf.cast(batch[0][:, 0], tf.int32)
    # Targets travel with their inputs.
    matched = tf.reduce_all(tf.equal(batch[1][:, 0], batch[0][:, 0] * 10))
    return (seen + tf.reduce_sum(tf.one_hot(indices, NUM), axis=0), batches + 1,
            tf.reduce_max(indices),
            in_order & matched & (tf.reduce_min(indices) == last + 1))

  evaluate = tf.function(lambda: data.fold(add_batch, (
      tf.zeros([NUM]), tf.constant(0), tf.constant(-1), tf.constant(True))))
  for _ in range(3):
    seen, batches, _, in_order = evaluate()
    np.testing.assert_array_equal(seen.numpy(), np.ones(NUM))
    assert int(batches) == 6 and bool(in_order)
  assert data.steps_per_epoch == (None if kind == 'unknown_size' else 6)
  # The last batch holds 3 examples: the spec admits any batch size.
  assert data.element_spec[0].shape.as_list() == [None, 5]
  assert data.element_spec[1].shape.as_list() == [None, 1]


@pytest.mark.parametrize('kind', READERS)
def test_take_is_the_first_examples_as_one_batch(kind):
  for training in (True, False):
    x, y = reader(kind, training).take(6)
    np.testing.assert_array_equal(x.numpy(), X[:6])
    np.testing.assert_array_equal(y.numpy(), Y[:6])
  x, y = PipelineData(tf.data.Dataset.from_tensor_slices((X, Y)), BATCH, training=True).take(6)
  np.testing.assert_array_equal(x.numpy(), X[:6])


def test_only_a_training_pipeline_has_a_position_to_save(tmp_path):
  assert reader('device', True).checkpoint_items() == {}
  assert reader('pipeline', False).checkpoint_items() == {}
  data = PipelineData((X, Y), BATCH, training=True, seed=3)  # Shuffled: a buffer to save too.
  items = data.checkpoint_items()
  assert list(items) == ['train_data']
  read = lambda: data.next(data.start(0), 0)[0][:, 0].numpy().tolist()
  read(), read()
  path = tf.train.Checkpoint(**items).write(str(tmp_path / 'ckpt'))
  third = read()
  read()
  tf.train.Checkpoint(**items).read(path).assert_consumed()
  assert read() == third


def test_factory_holds_arrays_on_the_device_and_pipes_the_rest():
  options = dict(replicas=Replicas(None), seed=tf.Variable(0, dtype=tf.int64), shuffle=False,
                 binding='Trainer.batch_size')
  dataset = tf.data.Dataset.from_tensor_slices((X, Y))
  for training in (True, False):
    chosen = [type(factory.batches(examples, BATCH, training, on_device=on_device, **options))
              for examples, on_device in (((X, Y), True), ((X, Y), False), (dataset, True))]
    assert chosen == [DeviceData, PipelineData, PipelineData], training
