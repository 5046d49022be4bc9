"""Gradient statistics computed on device inside the train step."""

from __future__ import annotations

from typing import Dict, Sequence

import tensorflow as tf


def gradient_statistics(gradients: Sequence[tf.Tensor],
                        variables: Sequence[tf.Variable]) -> Dict[str, tf.Tensor]:
  """Scalars describing one step's gradients.

  Args:
    gradients: The gradient of the loss for each variable (None entries, for
      variables the loss does not depend on, are skipped).
    variables: The trainable variables, in the same order.

  Returns:
    `gradients/global_norm`, the L2 norm over all gradients, and one
    `gradients/variance/<variable path>` per variable: the variance of that
    variable's gradient entries, as in the TensorBoard tutorial's per-layer
    gradient variance.
  """
  present = [(g, v) for g, v in zip(gradients, variables) if g is not None]
  stats = {'gradients/global_norm': tf.linalg.global_norm([g for g, _ in present])}
  for gradient, variable in present:
    stats[f'gradients/variance/{variable_name(variable)}'] = tf.math.reduce_variance(
        tf.cast(gradient, tf.float32))
  return stats


def variable_name(variable: tf.Variable) -> str:
  """A stable, readable name for a variable: its Keras path, else its name."""
  return getattr(variable, 'path', None) or variable.name.split(':')[0]
