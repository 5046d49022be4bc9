"""The best evaluation so far by one val scalar: which checkpoint to keep, when to stop early."""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Sequence

import gin
import tensorflow as tf

from gin_trainer.config import binding_checks
from gin_trainer.errors import ConfigError

MODES = ('min', 'max')
BEST_DIR = 'best'  # Under model_dir/checkpoints.


@gin.configurable
class BestCheckpoint:
  """Tracks the best value of a val scalar over a run's evaluations.

  With `monitor` set, each evaluation that improves on the best so far (by
  more than `min_delta`) is saved to `model_dir/checkpoints/best/`, apart
  from the rolling checkpoints (only the best is kept); with `patience`,
  training stops after that many evaluations in a row without one. The best
  value, its step and the count are saved in every checkpoint, so a resumed
  run carries on from them, and a run that stopped early stays stopped.

  Args:
    monitor: The val scalar to watch, e.g. 'loss' or 'mae'; None: off.
    mode: 'min' (lower is better) or 'max'.
    min_delta: How much better a value must be to count as an improvement.
    patience: Stop training after this many evaluations without an
      improvement; None: never stop early.
  """

  def __init__(self, monitor: Optional[str] = None, mode: str = 'min', min_delta: float = 0.0,
               patience: Optional[int] = None):
    if mode not in MODES:
      raise ConfigError(f'BestCheckpoint.mode is one of {MODES}, not {mode!r}')
    if min_delta < 0:
      raise ConfigError(f'BestCheckpoint.min_delta must be >= 0, not {min_delta!r}')
    binding_checks.positive('BestCheckpoint', patience=patience)
    if patience is not None and monitor is None:
      raise ConfigError("BestCheckpoint.patience needs a scalar to watch: bind "
                        "BestCheckpoint.monitor, e.g. 'loss'")
    self.monitor = monitor
    self.mode = mode
    self.min_delta = min_delta
    self.patience = patience
    if monitor is not None:  # The host's state, one copy: not under a strategy's scope.
      self.value = tf.Variable(math.nan, dtype=tf.float64, trainable=False, name='best_value')
      self.step = tf.Variable(-1, dtype=tf.int64, trainable=False, name='best_step')
      self.evaluations_since = tf.Variable(0, dtype=tf.int64, trainable=False,
                                           name='evaluations_since_best')

  def check(self, eval_scalars: Sequence[str]) -> None:
    """Refuses a `monitor` that no evaluation logs, before training."""
    if self.monitor is not None and self.monitor not in eval_scalars:
      where = (f'the eval step returns {list(eval_scalars)}' if eval_scalars
               else 'the run does not evaluate (Trainer.val_split is None)')
      raise ConfigError(f'BestCheckpoint.monitor={self.monitor!r} is not a val scalar: {where}')

  def checkpoint_items(self) -> Dict[str, Any]:
    """The best so far, saved with the run (nothing when off)."""
    if self.monitor is None:
      return {}
    return {'best': {'value': self.value, 'step': self.step,
                     'evaluations_since': self.evaluations_since}}

  def evaluated(self, step: int, means: Mapping[str, float]) -> bool:
    """Takes an evaluation's means at `step`; returns whether it is the new best."""
    value, best = means[self.monitor], float(self.value.numpy())
    sign = 1.0 if self.mode == 'max' else -1.0
    if math.isnan(best) or sign * (value - best) > self.min_delta:
      self.value.assign(value)
      self.step.assign(step)
      self.evaluations_since.assign(0)
      return True
    self.evaluations_since.assign_add(1)
    return False

  @property
  def stopped(self) -> bool:
    """Whether `patience` evaluations in a row brought no improvement."""
    return self.patience is not None and int(self.evaluations_since.numpy()) >= self.patience

  def summary(self, checkpoint: Optional[str]) -> Optional[Dict[str, Any]]:
    """The best so far and its checkpoint's path, for the run's summary; None when off."""
    if self.monitor is None:
      return None
    return {'scalar': self.monitor, 'value': float(self.value.numpy()),
            'step': int(self.step.numpy()), 'checkpoint': checkpoint}

  def describe(self) -> str:
    """The best so far, e.g. "val loss 0.2536 at step 93"."""
    return f'val {self.monitor} {float(self.value.numpy()):.4g} at step {int(self.step.numpy())}'
