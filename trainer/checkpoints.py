"""Saving a run's state, and restoring it safely: refuse a mismatch, skip a corrupt file."""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Tuple

import keras
import tensorflow as tf
from absl import logging

from trainer.errors import CheckpointMismatchError
from trainer.intervals import Interval

CHECKPOINT_DIR = 'checkpoints'
_VALUE_SUFFIX = '/.ATTRIBUTES/VARIABLE_VALUE'


class Checkpoints:
  """The run's `tf.train.CheckpointManager`, its save policy and its restore rules.

  Args:
    model_dir: The run's directory; checkpoints go to `model_dir/checkpoints`.
    items: What to save, by name (model, optimizer, global step, data
      position, summary accumulators, ...).
    every: Save every this interval (steps or epochs), if given.
    every_n_seconds: Also save when this many seconds passed since the last
      save, if given.
    steps_per_epoch: For an interval in epochs.
    max_to_keep: How many recent checkpoints to keep.
  """

  def __init__(self, model_dir: str, items: Dict[str, Any], every: Optional[Interval],
               every_n_seconds: Optional[float], steps_per_epoch: Optional[int],
               max_to_keep: int):
    self.checkpoint = tf.train.Checkpoint(**items)
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, os.path.join(model_dir, CHECKPOINT_DIR), max_to_keep=max_to_keep)
    self.every = every
    self.every_n_seconds = every_n_seconds
    self.steps_per_epoch = steps_per_epoch
    self._last_save = time.monotonic()

  def period_in_steps(self) -> Optional[int]:
    """The step interval loops must end on, if saving by steps or epochs."""
    return self.every.in_steps(self.steps_per_epoch) if self.every else None

  def is_due(self, step: int) -> bool:
    """Whether a loop ending at `step` should be followed by a save."""
    if self.every and self.every.is_due(step, self.steps_per_epoch):
      return True
    return (self.every_n_seconds is not None and
            time.monotonic() - self._last_save >= self.every_n_seconds)

  def save(self, step: int) -> str:
    """Saves `ckpt-<step>` and returns its path."""
    path = self.manager.save(checkpoint_number=step)
    self._last_save = time.monotonic()
    return path

  def restore_latest(self, model: tf.Module) -> Optional[str]:
    """Restores the newest readable checkpoint, if any.

    A checkpoint that cannot be read (truncated, corrupt, missing a file) is
    skipped with a warning in favour of the one before it. A checkpoint of a
    different model is refused: restoring part of it would silently mix two
    models.

    Args:
      model: The model, to compare its variables with the checkpoint's.

    Returns:
      The path restored, or None when there is no checkpoint to restore.

    Raises:
      CheckpointMismatchError: The newest readable checkpoint does not fit
        the configured model or optimizer.
    """
    for path in reversed(self.manager.checkpoints):
      try:
        mismatches = model_mismatches(path, model)
      except tf.errors.OpError as error:
        logging.warning('Checkpoint %s cannot be read (%s); trying the one before it.',
                        path, _first_line(error))
        continue
      if mismatches:
        raise CheckpointMismatchError(path, mismatches)
      try:
        self.checkpoint.restore(path).assert_consumed()
      except tf.errors.OpError as error:
        logging.warning('Checkpoint %s cannot be read (%s); trying the one before it.',
                        path, _first_line(error))
        continue
      except (AssertionError, ValueError) as error:
        raise CheckpointMismatchError(path, [_first_line(error)]) from None
      return path
    return None


def model_mismatches(path: str, model: tf.Module) -> List[str]:
  """How the model's variables differ from those saved at `path`, one line each."""
  saved = {_unescape(key[:-len(_VALUE_SUFFIX)]): tuple(shape)
           for key, shape in tf.train.list_variables(path)
           if key.startswith('model/') and key.endswith(_VALUE_SUFFIX)}
  current = dict(_variable_shapes(model, 'model'))
  lines = [f'{name}: shape {saved[name]} in the checkpoint, {current[name]} in the model'
           for name in sorted(saved.keys() & current.keys()) if saved[name] != current[name]]
  lines += [f'{name}: in the checkpoint, not in the model' for name in sorted(saved.keys() - current.keys())]
  lines += [f'{name}: in the model, not in the checkpoint' for name in sorted(current.keys() - saved.keys())]
  return lines


def _variable_shapes(root: Any, prefix: str) -> List[Tuple[str, Tuple[int, ...]]]:
  """(checkpoint path, shape) of every variable reachable from `root`, first path only."""
  view = tf.train.TrackableView(root)
  found, seen, frontier = [], {id(root)}, [(prefix, root)]
  while frontier:  # Breadth first, as the checkpoint names its paths.
    path, node = frontier.pop(0)
    for name, child in view.children(node).items():
      if id(child) in seen:
        continue
      seen.add(id(child))
      child_path = f'{path}/{name}'
      if isinstance(child, (tf.Variable, keras.Variable)):
        found.append((child_path, tuple(child.shape)))
      else:
        frontier.append((child_path, child))
  return found


def _unescape(key: str) -> str:
  """Undoes the checkpoint's escaping of '/' ('.S') and '.' ('..') in names."""
  return key.replace('..', '\0').replace('.S', '/').replace('\0', '.')


def _first_line(error: BaseException) -> str:
  return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
