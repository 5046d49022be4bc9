"""What the loops need of a split of batches: the data contract every reader implements."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Protocol, TypeVar

import tensorflow as tf

Batch = Any  # A nest of tensors, as the step functions take it.
State = Any  # What `start` returns and `next` reads.
Carry = TypeVar('Carry')


class Batches(Protocol):
  """One split, batched, read by the Trainer's on-device loops.

  Training reads `start(step)` once and then `next(state, step)` per step,
  inside the loop's graph. A `segmented` reader's state serves only up to
  `segment_end(step)` (an epoch, for data on the device: its batches are
  gathered once, so each step reads its batch by one index); the loop
  starts a new state there, and may run across summary boundaries. A
  reader that is not segmented (an iterator) keeps one state for the whole
  loop, and loops end at summary boundaries. Evaluation folds a function
  over every batch of the split.

  Attributes:
    element_spec: The spec of one batch (one replica's, under a strategy).
    steps_per_epoch: Batches in one pass over the split (training drops
      the last partial batch; evaluation keeps it), or None when unknown.
    compilable: Whether the reading ops compile with XLA (the whole loop is
      then compiled, else only the train step).
    segmented: See above.
    streamed: Whether batches come from an input pipeline running beside
      the loop (an iterator), which the loop may wait for: it then times
      each wait (the run's `throughput/waiting_for_input`).
  """

  element_spec: Any
  steps_per_epoch: Optional[int]
  compilable: bool
  segmented: bool
  streamed: bool

  def start(self, step: tf.Tensor) -> State:
    """In the graph: the reading state from 0-based global step `step`."""

  def segment_end(self, step: tf.Tensor) -> tf.Tensor:
    """In the graph: the step at which `start(step)`'s state stops serving (segmented only)."""

  def next(self, state: State, step: tf.Tensor) -> Batch:
    """In the graph: the training batch of global step `step`."""

  def fold(self, fn: Callable[[Carry, Batch], Carry], carry: Carry) -> Carry:
    """In the graph: `carry = fn(carry, batch)` over every batch of the split, in order."""

  def take(self, n: int) -> Batch:
    """Eagerly: the split's first `n` examples as one batch (to build a model)."""

  def seek(self, step: int, seed: int) -> None:
    """On the host, after a restore: be ready to read from global step `step`."""

  def checkpoint_items(self) -> Dict[str, Any]:
    """What a checkpoint must hold for a resumed run to read on exactly (may be empty)."""


def batches_per_epoch(num_examples: Optional[int], batch_size: int,
                      training: bool) -> Optional[int]:
  """Batches in one pass over `num_examples` (None: unknown).

  Training drops the last partial batch, so every step sees `batch_size`
  examples; evaluation keeps it.
  """
  if num_examples is None:
    return None
  return num_examples // batch_size if training else -(-num_examples // batch_size)
