"""Small data sets held on the device and batched inside the graph.

When a data builder returns arrays, the Trainer keeps them as tensors on the
device and makes every batch in the graph: no host iterator, no per-step
host work, and a train loop XLA can compile whole. The order of training
examples in epoch `e` is a permutation drawn from `(seed, e)`, so the data
position is a function of the global step alone: resuming at step `s`
continues with exactly the batch an uninterrupted run would have used.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Union

import tensorflow as tf

from gin_trainer.data.contract import Batch, State, batches_per_epoch
from gin_trainer.errors import DataError


class DeviceData:
  """One split of array examples on the device, batched in the graph (a `Batches`).

  Attributes:
    batch_size: Examples per batch.
    num_examples: Examples in the split.
    steps_per_epoch: Training: full batches per epoch (the remainder is
      dropped); evaluation: batches including a last, smaller one.
    compilable: True: the batching ops compile with XLA.
    segmented: True: a reading state serves one epoch (see `start`).
    streamed: False: every batch is on the device already.
  """

  compilable = True
  segmented = True
  streamed = False

  def __init__(self, examples: Any, batch_size: int, training: bool,
               seed: Union[int, tf.Variable] = 0, shuffle: bool = True):
    """Puts `examples` on the device.

    Args:
      examples: An array, or a tuple/dict of arrays sharing their first
        dimension (e.g. `(x, y)`).
      batch_size: Examples per batch.
      training: Shuffle (if `shuffle`) and drop the last partial batch.
      seed: Seed of the per-epoch order; a variable is read at each loop, so
        a value restored from a checkpoint takes effect.
      shuffle: Reorder the examples every epoch while training.
    """
    self.tensors = tf.nest.map_structure(tf.convert_to_tensor, examples)
    sizes = {int(t.shape[0]) for t in tf.nest.flatten(self.tensors)}
    if len(sizes) != 1:
      raise DataError(f'the arrays of a split must share their first dimension, got sizes '
                       f'{sorted(sizes)}')
    self.num_examples = sizes.pop()
    self.batch_size = batch_size
    self.training = training
    self.shuffle = shuffle and training
    self._seed = seed
    self.steps_per_epoch = batches_per_epoch(self.num_examples, batch_size, training)

  @property
  def element_spec(self) -> Any:
    """The spec of one batch: full in training; evaluation's last one may be short."""
    size = self.batch_size if self.training else None
    return tf.nest.map_structure(
        lambda t: tf.TensorSpec([size] + t.shape[1:].as_list(), t.dtype), self.tensors)

  def checkpoint_items(self) -> Dict[str, Any]:
    """Nothing: the position in the data is the global step."""
    return {}

  # No Python control flow on tensors: AutoGraph's conversion would only cost start-up.
  @tf.autograph.experimental.do_not_convert
  def _orders(self, epochs: tf.Tensor, seed: Union[int, tf.Tensor, tf.Variable]) -> tf.Tensor:
    """The example indices of each of `epochs` (a vector), in training order: a row each.

    A pseudo-random permutation keyed by (seed, epoch): a 4-round Feistel
    network on the smallest even number of bits that covers the indices,
    with cycle-walking (an index mapped past the last example is mapped
    again until it lands inside). Integer ops only, because XLA's stateless
    random generators give other numbers than TensorFlow's kernels for the
    same seed, and compiled and uncompiled runs must see the same order;
    and no sort, which XLA runs several times slower on CPU, at every epoch.
    """
    # uint32 arithmetic wraps around as the hash needs (a little faster under
    # XLA than int64 with masks, and the same orders).
    epoch_keys = _hash32(tf.bitwise.bitwise_xor(_hash32(tf.cast(seed, tf.uint32)),
                                                tf.cast(epochs, tf.uint32)))
    # The round keys in one matrix: a graph pays per op, not per element.
    round_keys = tf.split(_hash32(tf.bitwise.bitwise_xor(
        epoch_keys[:, tf.newaxis],
        tf.constant([_GOLDEN * r & 0xFFFFFFFF for r in range(4)], tf.uint32))), 4, axis=1)
    half = _uint32(max(1, ((self.num_examples - 1).bit_length() + 1) // 2))
    mask = tf.bitwise.left_shift(_uint32(1), half) - 1

    def permute(x):  # A bijection of [0, 2**(2 * half)), per row of keys.
      left, right = tf.bitwise.right_shift(x, half), tf.bitwise.bitwise_and(x, mask)
      for key in round_keys:
        mixed = tf.bitwise.bitwise_and(_hash32(tf.bitwise.bitwise_xor(right, key)), mask)
        left, right = right, tf.bitwise.bitwise_xor(left, mixed)
      return tf.bitwise.bitwise_or(tf.bitwise.left_shift(left, half), right)

    n = _uint32(self.num_examples)
    orders = permute(tf.cast(tf.range(self.num_examples), tf.uint32))
    # The domain is under 4n, so few indices need more than one walk.
    orders = tf.while_loop(lambda x: tf.reduce_any(x >= n),
                           lambda x: [tf.where(x >= n, permute(x), x)], [orders])[0]
    return tf.cast(orders, tf.int32)

  @tf.autograph.experimental.do_not_convert
  def _order(self, epoch: tf.Tensor, seed: Union[int, tf.Tensor, tf.Variable]) -> tf.Tensor:
    """The example indices of one epoch, in training order (see `_orders`)."""
    if not self.shuffle:
      return tf.range(self.num_examples)
    return self._orders(tf.reshape(epoch, [1]), seed)[0]

  @tf.autograph.experimental.do_not_convert
  def _take(self, indices: tf.Tensor) -> Batch:
    return tf.nest.map_structure(lambda t: tf.gather(t, indices), self.tensors)

  def seek(self, step: int, seed: int) -> None:
    """Nothing: the batch of each step is a function of the step (and the seed variable)."""
    del step, seed

  @tf.autograph.experimental.do_not_convert
  def start(self, step: tf.Tensor) -> State:
    """In the graph: the reading state from 0-based global step `step` to `segment_end(step)`.

    The state is the epoch of `step`: its examples in training order, in
    batches (`[steps_per_epoch, batch_size, ...]` per array), gathered once,
    so a step reads its batch by one index, without a branch; a loop
    crossing an epoch end starts again there. It holds a second copy of the
    training examples.
    """
    order = self._order(step // self.steps_per_epoch, self._seed)
    batched = [self.steps_per_epoch, self.batch_size]
    return tf.nest.map_structure(lambda t: tf.reshape(t, batched + t.shape[1:].as_list()),
                                 self._take(order[:self.steps_per_epoch * self.batch_size]))

  @tf.autograph.experimental.do_not_convert
  def segment_end(self, step: tf.Tensor) -> tf.Tensor:
    """In the graph: the step at which the state `start(step)` no longer holds (the epoch's end)."""
    return (step // self.steps_per_epoch + 1) * self.steps_per_epoch

  @tf.autograph.experimental.do_not_convert
  def next(self, state: State, step: tf.Tensor) -> Batch:
    """In the graph: the batch of 0-based global step `step` (`state` is unchanged)."""
    # A gather, not a slice: XLA needs a slice's start at compile time, so a
    # slice would recompile the whole loop for every new start step.
    index = step % self.steps_per_epoch
    return tf.nest.map_structure(lambda batches: tf.gather(batches, index), state)

  def batches_from(self, start_step: int, seed: int) -> tf.data.Dataset:
    """The batches `next` makes for steps `start_step`, `start_step + 1`, ... (forever).

    For a `tf.data` pipeline that feeds other devices (`DistributedData`):
    one permutation per epoch, then a gather per batch, on the host.

    Args:
      start_step: The 0-based global step of the first batch.
      seed: The seed of the per-epoch order (the value of the Trainer's
        data seed, read after restoring a checkpoint).
    """
    first_epoch = start_step // self.steps_per_epoch
    shape = [self.steps_per_epoch, self.batch_size]
    used = self.steps_per_epoch * self.batch_size  # The epoch's remainder is dropped.
    epochs = tf.data.Dataset.range(first_epoch, 2**62)
    batch_indices = epochs.flat_map(lambda epoch: tf.data.Dataset.from_tensor_slices(
        tf.reshape(self._order(epoch, seed)[:used], shape)))
    return batch_indices.skip(start_step - first_epoch * self.steps_per_epoch).map(self._take)

  def take(self, n: int) -> Batch:
    """The first `n` examples of the split as one batch (eagerly)."""
    return tf.nest.map_structure(lambda t: t[:n], self.tensors)

  def fold(self, fn: Callable[[State, Batch], State], state: State) -> State:
    """In the graph: `state = fn(state, batch)` over every batch of the split, in order."""
    full_batches, remainder = divmod(self.num_examples, self.batch_size)
    for i in tf.range(full_batches):
      state = fn(state, self._take(i * self.batch_size + tf.range(self.batch_size)))
    if remainder:
      state = fn(state, self._take(tf.range(self.num_examples - remainder, self.num_examples)))
    return state


_GOLDEN = 0x9E3779B9  # Spreads the round numbers over 32 bits.


def _uint32(value: int) -> tf.Tensor:
  return tf.constant(value & 0xFFFFFFFF, tf.uint32)


def _hash32(x: tf.Tensor) -> tf.Tensor:
  """A 32-bit integer mix (xor-shift-multiply) of uint32 values."""
  for _ in range(2):
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _uint32(16)))
    x = x * _uint32(0x45D9F3B)  # Wraps around at 2**32.
  return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _uint32(16)))
