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
  """`tf.function(fn)`, compiled with XLA if `jit_compile` and XLA can.

  If XLA refuses an op (found now, by lowering `fn` to HLO without running
  it), a warning says so and `fn` runs as a plain graph.
  """
  if not jit_compile:
    return tf.function(fn)
  xla = tf.function(fn, jit_compile=True)
  flat_specs = tf.nest.flatten(arg_specs)
  check = xla
  if len(flat_specs) != len(arg_specs):
    # XLA's lowering takes flat specs only: a nested argument (a batch, (x, y)) is
    # checked through a function of its parts.
    check = tf.function(lambda *parts: fn(*tf.nest.pack_sequence_as(arg_specs, parts)),
                        jit_compile=True)
  try:
    check.experimental_get_compiler_ir(*flat_specs)(stage='hlo')
  except ValueError as error:  # What TF raises for an op XLA cannot compile.
    logging.warning('Trainer.jit_compile: XLA cannot compile the %s (%s); running it '
                    'without XLA.', what, str(error).splitlines()[0][:300])
    return tf.function(fn)
  return xla
