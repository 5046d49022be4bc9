"""The one `tf.function` call each loop makes: train steps, then whatever is due."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import tensorflow as tf

from trainer import loops
from trainer.errors import ConfigError
from trainer.summary_manager import SummaryManager

Scalars = Dict[str, tf.Tensor]


class Outcome(NamedTuple):
  """What one iteration returns (device tensors).

  Attributes:
    train_values: The interval's values written to train/ (empty if the
      interval did not end).
    val_values: The evaluation's means (empty if it did not evaluate).
    bad_step: The step at which a watched scalar was first non-finite, or -1.
    watched: The watched scalars at the last step run.
  """
  train_values: Scalars
  val_values: Scalars
  bad_step: tf.Tensor
  watched: tf.Tensor


class Iteration:
  """Runs up to K train steps, and the summaries and evaluation due after them, in one call.

  The train loop (XLA-compiled where possible), the interval's accumulation,
  the summary writes and the evaluation all run in one `tf.function` call,
  so a loop costs one host round trip whatever is due. Python arguments
  choose what is due: one trace per combination (steady state: one or two).
  If a watched scalar turns non-finite, the loop stops there and nothing is
  written or evaluated.

  Args:
    train_step: batch -> scalars, the Trainer's step (with the learning rate).
    train_data: Training batches (`DeviceData` or `PipelineData`).
    eval_step: batch -> scalars; None without evaluation.
    val_data: Evaluation batches; None without evaluation.
    summaries: Accumulates and writes the scalars.
    global_step: Set to the step reached.
    check_finite: Train scalars that must stay finite.
    jit_compile: Compile the loops with XLA where possible.

  Raises:
    ConfigError: `check_finite` names a scalar the train step does not return.
    DataError: The model cannot take the data's batches.
  """

  def __init__(self, train_step: Callable[[Any], Scalars], train_data: Any,
               eval_step: Optional[Callable[[Any], Scalars]], val_data: Any,
               summaries: SummaryManager, global_step: tf.Variable,
               check_finite: Sequence[str], jit_compile: bool):
    self.train_scalars = list(loops.scalar_specs(train_step, train_data.element_spec, 'train_step'))
    unknown = sorted(set(check_finite) - set(self.train_scalars))
    if unknown:
      raise ConfigError(f'Trainer.check_finite names {unknown}, which the train step does not '
                       f'return; it returns {self.train_scalars}')
    summaries.track(self.train_scalars)
    self._train_loop = loops.make_train_loop(train_step, train_data, self.train_scalars,
                                             check_finite, jit_compile)
    self.eval_scalars = []
    self._eval_loop = None
    if val_data is not None:
      self.eval_scalars = list(loops.scalar_specs(eval_step, val_data.element_spec, 'eval_step'))
      self._eval_loop = loops.make_eval_loop(eval_step, val_data, self.eval_scalars, jit_compile)
    self._summaries = summaries
    self._global_step = global_step
    self._function = tf.function(self._run)

  def __call__(self, start_step: int, num_steps: int, x: int, interval_ends: bool,
               train_emit: Tuple[bool, ...], evaluate: bool,
               val_emit: Tuple[bool, ...]) -> Outcome:
    """Runs one iteration.

    Args:
      start_step: The global step before the iteration.
      num_steps: Train steps to run.
      x: The x-axis value of the step reached.
      interval_ends: End the summary interval (write train/).
      train_emit: Per tag of `summaries.train_tags`, whether to write it.
      evaluate: Evaluate (write val/).
      val_emit: Per tag of `eval_scalars`, whether to write it.

    Returns:
      The outcome, as device tensors.
    """
    return Outcome(*self._function(
        tf.constant(start_step, tf.int64), tf.constant(num_steps, tf.int64),
        tf.constant(x, tf.int64), interval_ends, train_emit if interval_ends else (),
        evaluate, val_emit if evaluate else ()))

  def _run(self, start_step, num_steps, x, interval_ends, train_emit, evaluate, val_emit):
    # Timed inside the call (tracing and host work excluded). A clock read has
    # no data dependence on the loop, so the control dependencies order it.
    began = _clock()
    with tf.control_dependencies([began]):
      sums, bad_step, watched = self._train_loop(start_step, num_steps)
    with tf.control_dependencies([bad_step, *sums.values()]):
      seconds = _clock() - began
    self._summaries.accumulate(sums, num_steps, seconds)
    self._global_step.assign(start_step + num_steps)
    ok = bad_step < 0
    train_values = self._summaries.write_train(x, ok, train_emit) if interval_ends else {}
    val_values = {}
    if evaluate:
      skipped = {name: tf.constant(0.0) for name in self.eval_scalars}
      val_values = tf.cond(ok, lambda: self._summaries.write_val(x, self._eval_loop(), val_emit),
                           lambda: skipped)
    return train_values, val_values, bad_step, watched


def _clock() -> tf.Tensor:
  """Host time in seconds, read in the graph (tf.timestamp refuses to run under op determinism)."""
  return tf.py_function(time.perf_counter, [], tf.float64)
