"""Whether and where the loops use XLA: decided once per run, here."""

from __future__ import annotations

import enum
from typing import Any, Callable, Optional

import tensorflow as tf
from absl import logging

from gin_trainer.data.contract import Batches
from gin_trainer.distribute.replicas import Replicas


class Xla(enum.Enum):
  """What XLA compiles in a run."""
  LOOP = 'loop'  # The whole loop call: steps, batching, sums, evaluation.
  STEP = 'step'  # The train step alone, inside a plain-graph loop (iterator-fed data).
  OFF = 'off'


def choose(jit_compile: bool, replicas: Replicas, train_data: Batches,
           val_data: Optional[Batches]) -> Xla:
  """Where XLA applies, given `Trainer.jit_compile`, the strategy and the data.

  XLA compiles the whole loop where every split's batching compiles
  (`Batches.compilable`: data on the device), else the train step alone
  (an iterator's ops do not compile). Under a strategy, replicated steps
  run as graphs.
  """
  if not jit_compile:
    return Xla.OFF
  if replicas.distributed:
    logging.info('Trainer.jit_compile applies to one device; under %s the replicated steps '
                 'run as graphs.', type(replicas.strategy).__name__)
    return Xla.OFF
  splits = [data for data in (train_data, val_data) if data is not None]
  return Xla.LOOP if all(data.compilable for data in splits) else Xla.STEP


def compiled(fn: Callable[..., Any], jit_compile: bool, what: str,
             *arg_specs: Any) -> Callable[..., Any]:
  """`fn` traced for `arg_specs` (its concrete function), compiled with XLA if `jit_compile`.

  For a function XLA compiles whole (the loop, an evaluation): XLA compiles
  it at its first call, before running any of it, so if it refuses an op
  there, nothing has run. A warning then says so, with XLA's reason, and
  `fn` runs as a plain graph from then on.
  """
  graph = tf.function(fn, jit_compile=jit_compile).get_concrete_function(*arg_specs)
  if not jit_compile:
    return graph
  first_call = True

  def call(*args: Any) -> Any:
    nonlocal graph, first_call
    if not first_call:
      return graph(*args)
    first_call = False
    try:
      return graph(*args)
    except tf.errors.InvalidArgumentError as error:
      if 'XLA' not in str(error):  # Not XLA's refusal: the plain graph would fail alike.
        raise
      _warn(what, error)
      graph = tf.function(fn).get_concrete_function(*arg_specs)
      return graph(*args)
  return call


def compiled_step(step_fn: Callable[[Any], Any], element_spec: Any) -> Callable[[Any], Any]:
  """The train step alone compiled with XLA, to call inside a plain graph loop (`Xla.STEP`).

  It is compiled when the loop first runs it, after the loop has read a
  batch, so whether XLA can compile it is asked now, by lowering it to HLO
  without running it. If XLA refuses an op, a warning says so and the step
  runs as a plain graph.
  """
  xla = tf.function(step_fn, jit_compile=True)
  # XLA's lowering takes flat specs only: the batch, (x, y), is passed as its parts.
  parts = tf.nest.flatten(element_spec)
  check = tf.function(lambda *batch: step_fn(tf.nest.pack_sequence_as(element_spec, batch)),
                      jit_compile=True)
  try:
    check.experimental_get_compiler_ir(*parts)(stage='hlo')
  except ValueError as error:  # What TF raises for an op XLA cannot compile.
    _warn('train step', error)
    return tf.function(step_fn)
  return xla


def _warn(what: str, error: Exception) -> None:
  logging.warning('Trainer.jit_compile: XLA cannot compile the %s (%s); running it '
                  'without XLA.', what, str(error).splitlines()[0][:300])
