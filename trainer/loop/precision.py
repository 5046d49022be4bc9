"""Mixed precision: the dtype policy the model computes in, and loss scaling for float16.

Under a mixed policy the model's layers compute in float16 or bfloat16 and
keep their variables in float32 (Keras's dtype policies). Losses and logged
scalars stay float32: `in_float32` casts a model's outputs before the loss,
and the loops refuse a scalar in a half-precision dtype. float16's narrow
range needs dynamic loss scaling, so its optimizer is wrapped in Keras's
`LossScaleOptimizer` (`loss_scale_optimizer.*` bindings reach it).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import keras
import tensorflow as tf

from gin_trainer.config import keras_configurables
from gin_trainer.errors import ConfigError

FLOAT32 = 'float32'
MIXED_FLOAT16 = 'mixed_float16'
POLICIES = (FLOAT32, 'mixed_bfloat16', MIXED_FLOAT16)
HALF_DTYPES = (tf.float16, tf.bfloat16)


def checked(precision: str) -> str:
  """`precision` if it names a policy (`POLICIES`).

  Raises:
    ConfigError: It does not.
  """
  if precision not in POLICIES:
    raise ConfigError(f'Trainer.precision is one of {POLICIES}, not {precision!r}')
  return precision


@contextlib.contextmanager
def policy(precision: str) -> Iterator[None]:
  """Layers created inside the block compute in `precision`'s dtype.

  Keras's global policy is set only for the block: a layer takes it when
  it is created, and other models of the process keep theirs.
  """
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(precision)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


def with_loss_scaling(optimizer: keras.optimizers.Optimizer,
                      precision: str) -> keras.optimizers.Optimizer:
  """`optimizer`, wrapped in a `LossScaleOptimizer` under float16 (unless it is one)."""
  if precision != MIXED_FLOAT16 or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
    return optimizer
  return keras_configurables.loss_scale_optimizer(optimizer)


# No Python control flow on tensors: AutoGraph's conversion would only cost start-up.
@tf.autograph.experimental.do_not_convert
def loss_scale(optimizer: keras.optimizers.Optimizer) -> Any:
  """The dynamic loss scale's variable, or None without loss scaling."""
  if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
    return optimizer.dynamic_scale
  return None


@tf.autograph.experimental.do_not_convert
def in_float32(outputs: Any) -> Any:
  """`outputs` (a tensor or a nest of them) with half-precision floats cast to float32.

  Use it on the model's outputs before computing a loss: under a mixed
  policy they are float16 or bfloat16, too coarse to sum a loss in.
  """
  return tf.nest.map_structure(
      lambda tensor: tf.cast(tensor, tf.float32) if tensor.dtype in HALF_DTYPES else tensor,
      outputs)
