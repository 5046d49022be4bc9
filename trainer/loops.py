"""On-device loops: many train steps, or a whole evaluation, per call.

Each loop is one `tf.function`. The scalars a step returns are summed in
loop-carried tensors (not `tf.Variable`s updated per step), so the host does
no work per step and the loop stays compilable by XLA.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

import tensorflow as tf

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
    TypeError: The step does not return a dict of scalar tensors.
  """
  outputs = tf.function(step_fn).get_concrete_function(element_spec).structured_outputs
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


def _add(sums: Scalars, values: Scalars, weight: tf.Tensor) -> Scalars:
  return {name: sums[name] + weight * tf.cast(values[name], tf.float32) for name in sums}


def make_train_loop(step_fn: StepFn, iterator: Any,
                    step_counter: tf.Variable) -> Callable[[int], Scalars]:
  """Builds `loop(num_steps) -> sums`, running `num_steps` steps on `iterator`.

  The loop is traced here, so the first call's time is running time only.

  Args:
    step_fn: The train step: batch -> dict of scalar tensors.
    iterator: The iterator over training batches (a `tf.data` iterator).
    step_counter: An int64 variable advanced by `num_steps` per call.

  Returns:
    A function returning, per scalar, its float32 sum over the steps.
  """
  names = scalar_specs(step_fn, iterator.element_spec, 'train_step')

  @tf.function
  def loop(iterator, num_steps):
    sums = {name: tf.constant(0.0) for name in names}
    for _ in tf.range(num_steps):
      sums = _add(sums, step_fn(next(iterator)), 1.0)
    step_counter.assign_add(num_steps)
    return sums

  loop.get_concrete_function(iterator, tf.TensorSpec([], tf.int64))
  return lambda num_steps: loop(iterator, tf.constant(num_steps, tf.int64))


def make_eval_loop(step_fn: StepFn, dataset: tf.data.Dataset) -> Callable[[], Scalars]:
  """Builds `loop() -> means` evaluating every batch of `dataset`.

  Args:
    step_fn: The eval step: batch -> dict of scalar (per-batch mean) tensors.
    dataset: The (finite) evaluation batches.

  Returns:
    A function returning each scalar's mean over all examples: batch values
    are weighted by the batch's size, so a smaller last batch counts for
    what it holds.
  """
  names = scalar_specs(step_fn, dataset.element_spec, 'eval_step')

  @tf.function
  def loop(dataset):
    sums = {name: tf.constant(0.0) for name in names}
    count = tf.constant(0.0)
    for batch in dataset:
      size = tf.cast(tf.shape(tf.nest.flatten(batch)[0])[0], tf.float32)
      sums = _add(sums, step_fn(batch), size)
      count += size
    return {name: total / count for name, total in sums.items()}

  loop.get_concrete_function(dataset)
  return lambda: loop(dataset)
