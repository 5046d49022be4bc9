"""Saving a run's state, and restoring it safely: refuse a mismatch, skip a corrupt file."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

import gin
import keras
import tensorflow as tf
from absl import logging

from gin_trainer.config import binding_checks
from gin_trainer.errors import (CheckpointMismatchError, CheckpointReadError,
                                CheckpointSettingsError, CheckpointWriteError)
from gin_trainer.intervals import Interval
from gin_trainer.run.best_checkpoint import BEST_DIR

CHECKPOINT_DIR = 'checkpoints'
WORKER_SCRATCH_PREFIX = '.worker_checkpoints_'
# A save by time waits at least this many times the last save's duration.
SAVE_TIME_FACTOR = 50
_VALUE_SUFFIX = '/.ATTRIBUTES/VARIABLE_VALUE'
SETTINGS = 'settings'  # The checkpoint key of `track`'s settings.
# What reading a truncated or corrupt checkpoint raises (IndexError: "Read less
# bytes than requested", from TensorFlow's checkpoint reader).
_UNREADABLE = (tf.errors.OpError, IndexError)


@gin.configurable(denylist=['model_dir', 'steps_per_epoch', 'worker'])
class Checkpoints:
  """The run's `tf.train.CheckpointManager`, its save policy and its restore rules.

  A checkpoint is always saved when training ends, and on SIGTERM/SIGINT;
  besides, every `every_n_steps` or `every_n_epochs`, and whenever
  `every_n_seconds` have passed since the last save. The default of a few
  seconds keeps what a crash loses small even in a short run; the wait
  stretches with the last save's duration (`SAVE_TIME_FACTOR` times it), so
  a large model, slow to save, spends its time training rather than saving.

  Args:
    model_dir: The run's directory; checkpoints go to `model_dir/checkpoints`.
    steps_per_epoch: For an interval in epochs.
    worker: None for the chief (or a single process); for another worker of
      a cluster, its index. As TensorFlow's multi-worker rules ask, every
      worker saves, but only the chief into `model_dir`: the others save into
      a scratch directory of their own, removed after each save. Every
      worker restores from `model_dir`.
    every_n_steps: Save every this many steps ...
    every_n_epochs: ... or epochs (at most one of the two).
    every_n_seconds: Also save when this long (or 50 times the last save's
      duration) has passed since the last save; None: only by steps or
      epochs.
    max_to_keep: How many recent checkpoints to keep.
  """

  def __init__(self, model_dir: str, steps_per_epoch: Optional[int],
               worker: Optional[int] = None,
               every_n_steps: Optional[int] = None,
               every_n_epochs: Optional[int] = None,
               every_n_seconds: Optional[float] = 10.0,
               max_to_keep: int = 3):
    binding_checks.positive('Checkpoints', max_to_keep=max_to_keep)
    binding_checks.positive_seconds('Checkpoints', every_n_seconds=every_n_seconds)
    self.every = Interval.from_either(('Checkpoints.every_n_steps', every_n_steps),
                                      ('Checkpoints.every_n_epochs', every_n_epochs),
                                      required=False)
    self.every_n_seconds = every_n_seconds
    self.max_to_keep = max_to_keep
    self.steps_per_epoch = steps_per_epoch
    self.directory = os.path.join(model_dir, CHECKPOINT_DIR)
    self._scratch = (None if worker is None else
                     os.path.join(model_dir, f'{WORKER_SCRATCH_PREFIX}{worker}'))
    self._last_save = time.monotonic()
    self._save_seconds = 0.0

  def track(self, items: Dict[str, Any], model: Optional[keras.Model] = None,
            settings: Optional[Dict[str, str]] = None) -> None:
    """Sets what to save, once every variable exists.

    Args:
      items: What to save, by name (optimizer, global step, data position,
        summary accumulators, ...).
      model: The model, saved as 'model' and also as 'model_variables', a
        list of every variable it has: Keras keeps some (the state of
        random seed generators, e.g. of Dropout) out of the model's
        checkpoint dependencies, and without them a resumed run would draw
        other random numbers. They are listed by position, as layer names
        change with how many models a process has built; a mismatch shows
        each one's path beside its position.
      settings: Bindings a checkpoint must have been trained with to be
        restored, by name (e.g. `{'Trainer.precision': 'float32'}`): saved
        as text, and compared before a restore reads any variable.
    """
    self.settings = dict(settings or {})
    items = {**items, SETTINGS: tf.Variable(json.dumps(self.settings, sort_keys=True),
                                            dtype=tf.string, trainable=False)}
    self.labels: Dict[str, str] = {}
    if model is not None:
      items = {'model': model, 'model_variables': list(model.variables), **items}
      self.labels = {f'model_variables/{i}': v.path for i, v in enumerate(model.variables)}
    self.checkpoint = tf.train.Checkpoint(**items)
    self.chief_manager = tf.train.CheckpointManager(self.checkpoint, self.directory,
                                                    max_to_keep=self.max_to_keep)
    self.manager = self.chief_manager
    self.best_manager = tf.train.CheckpointManager(
        self.checkpoint, self.best_directory, max_to_keep=1)
    if self._scratch is not None:
      self.manager = self.best_manager = tf.train.CheckpointManager(
          self.checkpoint, self._scratch, max_to_keep=1)

  def period_in_steps(self) -> Optional[int]:
    """The step interval loops must end on, if saving by steps or epochs."""
    return self.every.in_steps(self.steps_per_epoch) if self.every else None

  def is_due(self, step: int) -> bool:
    """Whether a loop ending at `step` should be followed by a save."""
    if self.every and self.every.is_due(step, self.steps_per_epoch):
      return True
    return (self.every_n_seconds is not None and time.monotonic() - self._last_save >= max(
        self.every_n_seconds, SAVE_TIME_FACTOR * self._save_seconds))

  def save(self, step: int, best: bool = False) -> str:
    """Saves `ckpt-<step>` and returns its path.

    Args:
      step: The global step.
      best: Save it as the best so far (in `checkpoints/best/`, replacing the
        one there), not as one of the rolling checkpoints.

    Raises:
      CheckpointWriteError: The save failed (disk full, no permission); the
        previous checkpoint is untouched (TensorFlow writes a new one under
        temporary names, and lists it only once it is complete).
    """
    began = time.monotonic()
    manager = self.best_manager if best else self.manager
    try:
      path = manager.save(checkpoint_number=step)
      if self._scratch is not None:
        tf.io.gfile.rmtree(self._scratch)
    except BaseException as error:  # Ctrl-C too: no temporary files left behind.
      self._remove_partial(manager.directory, step)
      self._unlist_deleted(manager.directory)
      if not isinstance(error, (tf.errors.OpError, OSError)):
        raise
      last = self.latest
      kept = f'the last saved one, {last}, is intact' if last else 'no checkpoint was saved before'
      raise CheckpointWriteError(
          f'checkpoint of step {step}: could not be saved in {manager.directory} '
          f'({_op_reason(error)}); {kept}. Free disk space or fix permissions, then rerun to '
          'resume from it.') from None
    if not best:  # The best is saved after an evaluation, beside the rolling saves.
      self._last_save = time.monotonic()
      self._save_seconds = self._last_save - began
    return path

  @property
  def best_directory(self) -> str:
    """Where the best checkpoint is kept (`BestCheckpoint`)."""
    return os.path.join(self.directory, BEST_DIR)

  @property
  def latest(self) -> Optional[str]:
    """The newest checkpoint in `model_dir`, if any (read afresh: the chief may have saved)."""
    return tf.train.latest_checkpoint(self.directory)

  @staticmethod
  def _remove_partial(directory: str, step: int) -> None:
    """Removes what a failed save of `step` left (TensorFlow's temporary files), if it can."""
    for path in tf.io.gfile.glob(os.path.join(directory, f'ckpt-{step}_temp*')):
      try:
        tf.io.gfile.rmtree(path)
      except tf.errors.OpError:  # Whatever blocked the save may block this too; it is harmless.
        pass

  @staticmethod
  def _unlist_deleted(directory: str) -> None:
    """Lists only the checkpoints whose files exist, after an interrupted save.

    TensorFlow lists a new checkpoint, deletes the oldest and lists again; an
    interrupt in between leaves the deleted one listed.
    """
    listed = tf.train.get_checkpoint_state(directory)
    if listed is None:
      return
    present = [path for path in listed.all_model_checkpoint_paths
               if tf.io.gfile.exists(f'{path}.index')]
    if present and present != list(listed.all_model_checkpoint_paths):
      tf.compat.v1.train.update_checkpoint_state(
          directory, present[-1], present,
          all_model_checkpoint_timestamps=[time.time()] * len(present))

  def restore_latest(self) -> Optional[str]:
    """Restores the newest readable checkpoint, if any.

    A checkpoint that cannot be read (truncated, corrupt, missing a file) is
    skipped with a warning in favour of the one before it. A checkpoint of a
    different model is refused: restoring part of it would silently mix two
    models.

    Returns:
      The path restored, or None when there is no checkpoint to restore.

    Raises:
      CheckpointMismatchError: The newest readable checkpoint does not fit
        the configured model or optimizer.
    """
    for path in reversed(self.chief_manager.checkpoints):
      try:
        self.restore(path)
      except CheckpointReadError as error:
        logging.warning('%s; trying the one before it.', error)
        continue
      return path
    return None

  def restore(self, path: str) -> None:
    """Restores the checkpoint at `path` (a prefix such as `.../ckpt-500`).

    Raises:
      CheckpointMismatchError: It does not fit the configured model or optimizer.
      CheckpointReadError: It cannot be read.
    """
    try:
      self._check_settings(path)
      differences = mismatches(path, self.checkpoint, self.labels)
      if differences:
        raise CheckpointMismatchError(path, differences)
      self.checkpoint.restore(path).assert_consumed()
    except _UNREADABLE as error:
      raise CheckpointReadError(f'checkpoint {path} cannot be read ({_first_line(error)})') from None
    except (AssertionError, ValueError) as error:
      raise CheckpointMismatchError(path, [_first_line(error)]) from None

  def _check_settings(self, path: str) -> None:
    """Refuses the checkpoint at `path` if it was trained with other `settings`.

    A checkpoint saved before a setting was recorded is not checked for it.
    """
    reader = tf.train.load_checkpoint(path)
    key = SETTINGS + _VALUE_SUFFIX
    saved = json.loads(reader.get_tensor(key)) if reader.has_tensor(key) else {}
    changed = {name: value for name, value in saved.items()
               if name in self.settings and self.settings[name] != value}
    if changed:
      raise CheckpointSettingsError(path, changed, self.settings)


def mismatches(path: str, checkpoint: tf.train.Checkpoint,
               labels: Dict[str, str]) -> List[str]:
  """How the variables saved at `path` differ from `checkpoint`'s, one line each.

  The current variables are written to an in-memory file system first, so
  both sides are named exactly as TensorFlow names them on disk; `labels`
  adds a readable name to a key.
  """
  saved = _shapes(path)
  probe_dir = f'ram://gin_trainer_compare/{uuid.uuid4().hex}'
  try:
    current = _shapes(checkpoint.write(f'{probe_dir}/ckpt'))
  finally:
    tf.io.gfile.rmtree(probe_dir)
  name = lambda key: f'{key} ({labels[key]})' if key in labels else key
  lines = [f'{name(key)}: shape {saved[key]} in the checkpoint, {current[key]} now'
           for key in saved.keys() & current.keys() if saved[key] != current[key]]
  lines += [f'{name(key)}: in the checkpoint only' for key in saved.keys() - current.keys()]
  lines += [f'{name(key)}: in the configured run only' for key in current.keys() - saved.keys()]
  return sorted(lines, key=lambda line: (not line.startswith('model'), line))


def _shapes(path: str) -> Dict[str, Tuple[int, ...]]:
  """Saved variables by readable name ('model/hidden/_kernel'), with their shapes."""
  reader = tf.compat.v1.train.NewCheckpointReader(path)
  return {_unescape(key[:-len(_VALUE_SUFFIX)]): tuple(shape)
          for key, shape in reader.get_variable_to_shape_map().items()
          if key.endswith(_VALUE_SUFFIX) and not key.startswith('save_counter')}


def _unescape(key: str) -> str:
  """Undoes the checkpoint's escaping of '/' ('.S') and '.' ('..') in names."""
  return key.replace('..', '\0').replace('.S', '/').replace('\0', '.')


def _op_reason(error: BaseException) -> str:
  """The OS's reason in a TensorFlow error, without the op's name around it."""
  line = _first_line(error)
  line = re.sub(r'^\{\{function_node [^}]*\}\}\s*', '', line)
  return re.sub(r'\s*\[Op:\w+\]$', '', line)


def _first_line(error: BaseException) -> str:
  return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
