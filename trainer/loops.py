"""On-device loops: many train steps, or a whole evaluation, per call.

The loops are graph code for the caller's `tf.function` (`compiled` makes
one, with XLA where it can; the Iteration puts a train loop and an
evaluation in one). The scalars a step returns are summed in loop-carried
tensors (not `tf.Variable`s updated per step), so the host does no work per
step and the loop stays compilable by XLA. Batches come from a
data object (`DeviceData`, `PipelineData` or `DistributedData`) with
`start(step)` and `next(state, step) -> batch` for training (with `segmented`, a
state from `start(step)` holds until `segment_end(step)` only),
`fold(fn, state)` for evaluation, an `element_spec` and `compilable`
(whether its batching ops compile with XLA). Under a tf.distribute strategy,
the step functions given here already run on every replica and combine
their scalars (`trainer.distribution.Replicas`).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import tensorflow as tf
from absl import logging

from trainer.errors import DataError

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
    TypeError: The step does not return a dict of scalar tensors.
  """
  try:
    outputs = tf.function(step_fn).get_concrete_function(element_spec).structured_outputs
  except ValueError as error:
    shapes = tf.nest.map_structure(lambda spec: f'{spec.dtype.name}{spec.shape}', element_spec)
    # The last line: above it, AutoGraph lists where in the user's code it happened.
    reason = [line.strip() for line in str(error).splitlines() if line.strip()][-1].rstrip('.')
    raise DataError(f'{what} fails on batches of {shapes}: {reason}. Check that the data '
                    '(Trainer.data) fits the model (Trainer.model).') from error
  if not isinstance(outputs, dict) or not outputs:
    raise TypeError(f'{what} must return a non-empty dict of scalar tensors, '
                    f'got {type(outputs).__name__}')
  specs = {}
  for name, tensor in outputs.items():
    if not isinstance(tensor, tf.Tensor) or tensor.shape.rank != 0:
      shape = getattr(tensor, 'shape', type(tensor).__name__)
      raise TypeError(f"{what} returned {name!r} with shape {shape}; every value "
                      'it returns is logged as a scalar, so reduce it first '
                      '(e.g. tf.reduce_mean)')
    specs[name] = tf.TensorSpec([], tensor.dtype)
  return specs


def compiled(fn: Callable[..., Any], jit_compile: bool, what: str,
             *arg_specs: Any) -> Callable[..., Any]:
  """`tf.function(fn)`, compiled with XLA if `jit_compile` and XLA can.

  If XLA refuses an op (found now, by lowering `fn` to HLO without running
  it), a warning says so and `fn` runs as a plain graph.
  """
  if not jit_compile:
    return tf.function(fn)
  xla = tf.function(fn, jit_compile=True)
  try:
    xla.experimental_get_compiler_ir(*arg_specs)(stage='hlo')
  except ValueError as error:  # What TF raises for an op XLA cannot compile.
    logging.warning('Trainer.jit_compile: XLA cannot compile the %s (%s); running it '
                    'without XLA.', what, str(error).splitlines()[0][:300])
    return tf.function(fn)
  return xla


def make_train_loop(step_fn: StepFn, data: Any, names: Sequence[str], watch: Sequence[str],
                    jit_compile: bool, interval: Optional[int] = None,
                    max_parts: int = 1) -> Callable[[tf.Tensor, tf.Tensor], Any]:
  """Builds `loop(start_step, num_steps) -> (part_sums, bad_step)`, to call in a graph.

  Runs up to `num_steps` steps. The loop stops early at the first step
  where a watched scalar is NaN or infinite (or makes its sum overflow).
  With `interval`, the loop may run across summary interval boundaries: it
  is cut into parts there, and returns each part's sums (so the host gets
  every interval's means from one call).

  Args:
    step_fn: The train step: batch -> dict of scalar tensors.
    data: The training batches (see the module docstring).
    names: The names of the scalars `step_fn` returns (`scalar_specs`).
    watch: The names of the scalars that must stay finite.
    jit_compile: Compile with XLA: where `data` does not allow the caller to
      compile the whole loop (`compiled(..., data.compilable)`), the step alone.
    interval: The summary interval in steps, for `segmented` data only;
      None: the caller ends every loop at or before the next boundary.
    max_parts: With `interval`, the most parts a loop has (the caller's
      promise): the rows of the result.

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
  if jit_compile and not data.compilable:
    step_fn = compiled(step_fn, True, 'train step', data.element_spec)

  watched = [list(names).index(name) for name in watch]
  # Segments are epochs; with an interval of whole epochs every boundary is
  # a segment's end, and the loop needs no `while` over parts (without XLA
  # that nesting cost a tutorial epoch ~3.6%).
  parts_in_segments = interval is not None and interval % data.steps_per_epoch != 0

  def running(step, until, sums):
    # A non-finite value makes its sum non-finite from that step on, so the
    # sums are the watch (a separate loop-carried copy of the watched values
    # made XLA's loop 80 us slower per call). A tensor `and`: Python's would
    # become a tf.cond per step.
    return tf.logical_and(step < until, all_finite(sums))

  def all_finite(sums):
    if not watched:
      return tf.constant(True)
    return tf.reduce_all(tf.math.is_finite(tf.gather(sums, watched)))

  def run_steps(state, until, step, sums):
    # One vector of sums, and the data state a loop invariant: without XLA,
    # a graph pays per op, and per loop variable at every step.
    while running(step, until, sums):
      values = step_fn(data.next(state, step))
      sums += tf.stack([tf.cast(values[name], tf.float32) for name in names])
      step += 1
    return step, sums

  def record(rows, row, step, sums, ran=None):
    """Puts the part's sums in its row; at a boundary, starts the next part.

    `ran`: whether the part ran any step, a boolean tensor (None: it did).
    A part that ran none must not start the next part again at the
    boundary it began at.
    """
    rows = tf.tensor_scatter_nd_update(rows, [[row]], [sums])
    # Kept when non-finite, so that the loop stops on them.
    boundary = tf.logical_and(step % interval == 0, all_finite(sums))
    if ran is not None:
      boundary = tf.logical_and(boundary, ran)
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
        if parts_in_segments and interval >= data.steps_per_epoch:
          # At most one boundary inside a segment: two parts, the second
          # often empty, and no `while` over parts. Against an interval of
          # whole epochs (no parts), that `while` cost a 1000-step
          # `b_regression` call ~1.5% (5% without XLA), two parts ~0.4-1.1% (3.4%).
          part_end = tf.minimum(segment_end, (step // interval + 1) * interval)
          step, sums = run_steps(state, part_end, step, sums)
          rows, row, sums = record(rows, row, step, sums)
          rest_from = step
          step, sums = run_steps(state, segment_end, step, sums)
          rows, row, sums = record(rows, row, step, sums, step > rest_from)
        elif parts_in_segments:  # Parts: a branch per part, not per step.
          while running(step, segment_end, sums):
            part_end = tf.minimum(segment_end, (step // interval + 1) * interval)
            step, sums = run_steps(state, part_end, step, sums)
            rows, row, sums = record(rows, row, step, sums)
        else:
          step, sums = run_steps(state, segment_end, step, sums)
          if interval:
            rows, row, sums = record(rows, row, step, sums)
    else:  # One state for the whole loop (an iterator).
      step, sums = run_steps(data.start(step), end, step, sums)
    if not interval:
      rows = sums[tf.newaxis]
    # The loop stopped early only at the step that made a watched sum non-finite.
    bad_step = tf.where(all_finite(sums), tf.constant(-1, tf.int64), step)
    return rows, bad_step

  return loop


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


def make_eval_loop(batch_sums: Callable[[Any], Tuple[Scalars, tf.Tensor]], data: Any,
                   names: Sequence[str]) -> Callable[[], Scalars]:
  """Builds `loop() -> means` evaluating every batch of `data`, to call in a graph.

  Args:
    batch_sums: batch -> (weighted sums, examples), see `weighted_by_size`.
    data: The evaluation batches (see the module docstring).
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
