"""On-device loops: many train steps, or a whole evaluation, per call.

The loops are graph code for the caller's `tf.function` (`CompiledLoop`
puts a train loop and an evaluation in one). The scalars a step returns are
summed in loop-carried tensors (not `tf.Variable`s updated per step), so
the host does no work per step and the loop stays compilable by XLA.
Batches come from the data contract (`trainer.data.contract.Batches`).
Under a tf.distribute strategy, the step functions given here already run
on every replica and combine their scalars (`Replicas`).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import tensorflow as tf

from gin_trainer.data.contract import Batches
from gin_trainer.errors import DataError, ModelError
from gin_trainer.loop.xla import compiled_step

Scalars = Dict[str, tf.Tensor]
StepFn = Callable[[Any], Scalars]


def scalar_specs(step_fn: StepFn, element_spec: Any, what: str) -> Dict[str, tf.TensorSpec]:
  """Traces `step_fn` once, without running it, to learn what it returns.

  Tracing also creates any variables the step needs (layers, optimizer
  slots), so they exist before a checkpoint is restored.

  Args:
    step_fn: A train or eval step: batch -> dict of scalar tensors.
    element_spec: The spec of one batch.
    what: The step's name, for error messages ('train_step', 'eval_step').

  Returns:
    The spec of each scalar, by name.

  Raises:
    DataError: The step fails on batches of this spec (Keras raises a
      ValueError when a batch does not fit the model).
    ModelError: The step does not return a dict of scalar tensors, or
      returns one in half precision.
  """
  try:
    outputs = tf.function(step_fn).get_concrete_function(element_spec).structured_outputs
  except ValueError as error:
    shapes = tf.nest.map_structure(lambda spec: f'{spec.dtype.name}{spec.shape}', element_spec)
    raise DataError(f'{what} fails on batches of {shapes}: {keras_reason(error)}. Check that the '
                    'data (Trainer.data) fits the model (Trainer.model).') from error
  if not isinstance(outputs, dict) or not outputs:
    raise ModelError(f'{what} must return a non-empty dict of scalar tensors, '
                     f'got {type(outputs).__name__}')
  specs = {}
  for name, tensor in outputs.items():
    if not isinstance(tensor, tf.Tensor) or tensor.shape.rank != 0:
      shape = getattr(tensor, 'shape', type(tensor).__name__)
      raise ModelError(f"{what} returned {name!r} with shape {shape}; every value "
                       'it returns is logged as a scalar, so reduce it first '
                       '(e.g. tf.reduce_mean)')
    if tensor.dtype in (tf.float16, tf.bfloat16):
      raise ModelError(f'{what} returned {name!r} in {tensor.dtype.name}; logged scalars are '
                       'computed in float32: cast the model\'s outputs before the loss '
                       '(gin_trainer.in_float32)')
    specs[name] = tf.TensorSpec([], tensor.dtype)
  return specs


def keras_reason(error: ValueError) -> str:
  """The one line of a tracing error that says what is wrong.

  AutoGraph lists where in the user's code it happened; Keras then names
  the call, gives the reason (the layer, the expected and given shapes)
  and lists the call's arguments.
  """
  lines = [line.strip() for line in re.sub(r'\x1b\[[0-9;]*m', '', str(error)).splitlines()
           if line.strip()]
  for index, line in enumerate(lines[:-1]):
    if 'Exception encountered when calling' in line:
      return lines[index + 1].rstrip('.')
  return lines[-1].rstrip('.')


def make_train_loop(step_fn: StepFn, data: Batches, names: Sequence[str], watch: Sequence[str],
                    compile_step: bool, interval: Optional[int] = None, max_parts: int = 1,
                    input_wait: Optional[str] = None) -> Callable[[tf.Tensor, tf.Tensor], Any]:
  """Builds `loop(start_step, num_steps) -> (part_sums, bad_step)`, to call in a graph.

  Runs up to `num_steps` steps. The loop stops early at the first step
  where a watched scalar is NaN or infinite (or makes its sum overflow).
  With `interval`, the loop may run across summary interval boundaries: it
  is cut into parts there, and returns each part's sums (so the host gets
  every interval's means from one call).

  Args:
    step_fn: The train step: batch -> dict of scalar tensors.
    data: The training batches.
    names: The names of the scalars `step_fn` returns (`scalar_specs`).
    watch: The names of the scalars that must stay finite.
    compile_step: Compile the step alone with XLA (`Xla.STEP`).
    interval: The summary interval in steps, for `segmented` data only;
      None: the caller ends every loop at or before the next boundary.
    max_parts: With `interval`, the most parts a loop has (the caller's
      promise): the rows of the result.
    input_wait: A name in `names` (after the step's own) under which to sum
      the seconds each step waited for its batch; None: no timing.

  Returns:
    A Python function of int64 tensors, returning: a float32 matrix whose
    row i holds, per scalar in `names` order, its sum over the steps of the
    loop's i-th part (parts end at the interval boundaries strictly inside
    the loop, and at its end; rows past the last part are zeros; a watched
    sum that was non-finite stays so); and the global step at which a
    watched scalar was first non-finite, or -1.
  """
  if interval is not None and not data.segmented:
    raise ValueError('a loop runs across interval boundaries only over segmented data')
  if compile_step:
    step_fn = compiled_step(step_fn, data.element_spec)

  watched = [list(names).index(name) for name in watch]

  # No Python control flow on tensors: AutoGraph's conversion would only cost start-up.
  @tf.autograph.experimental.do_not_convert
  def running(step, until, sums):
    # A non-finite value makes its sum non-finite from that step on, so the
    # sums are the watch, with no loop-carried copy of the watched values.
    # A tensor `and`: Python's would become a tf.cond per step.
    return tf.logical_and(step < until, all_finite(sums))

  @tf.autograph.experimental.do_not_convert
  def all_finite(sums):
    if not watched:
      return tf.constant(True)
    return tf.reduce_all(tf.math.is_finite(tf.gather(sums, watched)))

  @tf.autograph.experimental.do_not_convert
  def timed_next(state, step):
    """The batch, and the seconds from asking for it to having it."""
    asked = tf.timestamp()
    with tf.control_dependencies([asked]):
      batch = data.next(state, step)
    with tf.control_dependencies(tf.nest.flatten(batch)):
      return batch, tf.timestamp() - asked

  def run_steps(state, until, step, sums):
    # One vector of sums, and the data state a loop invariant: without XLA,
    # a graph pays per op, and per loop variable at every step.
    while running(step, until, sums):
      if input_wait:
        batch, waited = timed_next(state, step)
        values = {**step_fn(batch), input_wait: waited}
      else:
        values = step_fn(data.next(state, step))
      sums += tf.stack([tf.cast(values[name], tf.float32) for name in names])
      step += 1
    return step, sums

  @tf.autograph.experimental.do_not_convert
  def record(rows, row, step, sums):
    """Puts the part's sums in its row; at a boundary, starts the next part."""
    rows = tf.tensor_scatter_nd_update(rows, [[row]], [sums])
    # Kept when non-finite, so that the loop stops on them.
    boundary = tf.logical_and(step % interval == 0, all_finite(sums))
    return rows, row + tf.cast(boundary, tf.int32), tf.where(boundary, 0.0, sums)

  def loop(start_step, num_steps):
    end = start_step + num_steps
    sums = tf.zeros([len(names)])
    rows, row = tf.zeros([max_parts, len(names)]), tf.constant(0)
    # `while`, not `for i in tf.range(num_steps)`: under XLA the latter needs
    # num_steps at compile time and recompiles for every new loop length.
    step = start_step
    if data.segmented:
      while running(step, end, sums):
        # Segments (epochs, for DeviceData) keep the data state fixed, so the
        # steps inside one read their batches without a branch per step.
        state, segment_end = data.start(step), tf.minimum(end, data.segment_end(step))
        if interval:  # Parts: a branch per part, not per step.
          while running(step, segment_end, sums):
            part_end = tf.minimum(segment_end, (step // interval + 1) * interval)
            step, sums = run_steps(state, part_end, step, sums)
            rows, row, sums = record(rows, row, step, sums)
        else:
          step, sums = run_steps(state, segment_end, step, sums)
    else:  # One state for the whole loop (an iterator).
      step, sums = run_steps(data.start(step), end, step, sums)
    if not interval:
      rows = sums[tf.newaxis]
    # The loop stopped early only at the step that made a watched sum non-finite.
    bad_step = tf.where(all_finite(sums), tf.constant(-1, tf.int64), step)
    return rows, bad_step

  return loop


def clocks_allowed() -> bool:
  """Whether a graph may read the clock: under op determinism (a seed) TensorFlow refuses."""
  try:
    tf.timestamp()
  except tf.errors.FailedPreconditionError:
    return False
  return True


def weighted_by_size(step_fn: StepFn) -> Callable[[Any], Tuple[Scalars, tf.Tensor]]:
  """An eval step as `batch -> (scalars * batch size, batch size)`.

  Weighting by size makes a smaller last batch count for what it holds. An
  empty batch (a replica left without examples at the end of a distributed
  evaluation) counts for nothing, though its means are NaN.
  """

  def batch_sums(batch):
    size = tf.cast(tf.shape(tf.nest.flatten(batch)[0])[0], tf.float32)
    values = step_fn(batch)
    return ({name: tf.where(size > 0, size * tf.cast(value, tf.float32), 0.0)
             for name, value in values.items()}, size)
  return batch_sums


def make_eval_loop(batch_sums: Callable[[Any], Tuple[Scalars, tf.Tensor]], data: Batches,
                   names: Sequence[str]) -> Callable[[], Scalars]:
  """Builds `loop() -> means` evaluating every batch of `data`, to call in a graph.

  Args:
    batch_sums: batch -> (weighted sums, examples), see `weighted_by_size`.
    data: The evaluation batches.
    names: The names of the scalars the eval step returns (`scalar_specs`).

  Returns:
    A Python function returning each scalar's mean over all examples.
  """

  def add_batch(state, batch):
    sums, count = state
    batch_total, size = batch_sums(batch)
    return {name: sums[name] + batch_total[name] for name in names}, count + size

  def loop():
    sums, count = data.fold(add_batch, ({name: tf.constant(0.0) for name in names},
                                        tf.constant(0.0)))
    return {name: total / count for name, total in sums.items()}

  return loop
