"""A trained run, restored from its `model_dir`: evaluate, predict, export.

    run = restore('runs/regression')          # the latest checkpoint
    run.evaluate('test')                       # {'loss': ..., 'mae': ...}
    run.predict(inputs)                        # the model's outputs, as numpy
    run.export()                               # SavedModel and .keras file

The run's own config (`model_dir/operative_config.gin`) rebuilds its
Trainer on one device; the checkpoint is only read, so this works while
training goes on in another process (it takes no lock and writes only
`eval_<split>/` and `export/`).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence

import gin
import keras
import numpy as np
import tensorflow as tf
from absl import logging

from gin_trainer import experiment
from gin_trainer.config import gin_files, keras_configurables
from gin_trainer.run.checkpoints import Checkpoints
from gin_trainer.errors import ConfigError, DataError
from gin_trainer.loop import graph_loops
from gin_trainer.summaries.operative_config import OPERATIVE_CONFIG
from gin_trainer.trainer import Trainer

EXPORT_DIR = 'export'
SAVED_MODEL = 'saved_model'
KERAS_FILE = 'model.keras'
BEST = 'best'  # The checkpoint argument naming the best evaluation's checkpoint.


class RestoredRun:
  """A Trainer with a checkpoint's weights (see `restore`).

  Attributes:
    trainer: The run's Trainer, built from its operative config.
    model: Its Keras model, with the checkpoint's weights (the moving
      averages, for an optimizer with `use_ema`, unless asked otherwise).
    checkpoint: The checkpoint restored.
    step: Its global step.
  """

  def __init__(self, trainer: Trainer, checkpoint: str):
    self.trainer = trainer
    self.model = trainer.model
    self.checkpoint = checkpoint
    self.step = int(trainer.global_step.numpy())

  def evaluate(self, split: str) -> Dict[str, float]:
    """Evaluates `split` as the run evaluates its val split; writes `eval_<split>/` at the step.

    Returns:
      The eval step's scalars, each a mean over the split's examples.
    """
    batches = self.trainer.eval_batches(split)
    means = self.trainer.compiled_loop().evaluation(batches)()
    self.trainer.summaries.add_evaluation(split, self.step, means)
    self.trainer.summaries.flush()
    return means

  def split_inputs(self, split: str) -> Any:
    """The inputs of a data builder split's examples: x of `(x, y)` pairs, or the examples."""
    examples = self.trainer.data(split)
    if isinstance(examples, tf.data.Dataset):
      return examples.batch(self.trainer.eval_batch_size)  # Keras's predict reads x of (x, y).
    return examples[0] if isinstance(examples, (tuple, list)) else examples

  def predict(self, inputs: Any, batch_size: Optional[int] = None) -> Any:
    """The model's outputs (numpy, in the model's structure) on `inputs`, in batches.

    Raises:
      DataError: The model cannot take `inputs` (Keras's reason).
    """
    try:
      return self.model.predict(inputs, batch_size=batch_size or self.trainer.eval_batch_size,
                                verbose=0)
    except ValueError as error:  # What Keras raises for inputs the model cannot take.
      shape = getattr(inputs, 'shape', type(inputs).__name__)
      raise DataError(f'the model cannot take inputs of shape {shape}: '
                      f'{graph_loops.keras_reason(error)}') from None

  def export(self, directory: Optional[str] = None) -> Dict[str, str]:
    """Writes the model as a TensorFlow SavedModel and as a `.keras` file.

    The SavedModel has a `serve` signature taking the model's inputs (for
    TF Serving, or `tf.saved_model.load(path).serve(x)`). The `.keras` file
    loads with `keras.saving.load_model`; a subclassed model's class must be
    importable there (for the shipped models: `import models`).

    Args:
      directory: Where to write; default `model_dir/export/step_<step>`.

    Returns:
      The path of each export: 'saved_model' and 'keras'.
    """
    directory = directory or os.path.join(self.trainer.model_dir, EXPORT_DIR, f'step_{self.step}')
    paths = {'saved_model': os.path.join(directory, SAVED_MODEL),
             'keras': os.path.join(directory, KERAS_FILE)}
    tf.io.gfile.makedirs(directory)
    self.model.export(paths['saved_model'], verbose=False)
    self.model.save(paths['keras'])
    return paths


def restore(model_dir: str, checkpoint: Optional[str] = None, gin_params: Sequence[str] = (),
            ema_weights: bool = True) -> RestoredRun:
  """Rebuilds a run's Trainer from `model_dir` and restores one of its checkpoints.

  The run's config replaces this process's gin config (`gin.clear_config`).

  Args:
    model_dir: The run's directory.
    checkpoint: A checkpoint's path or name (e.g. 'ckpt-500'), or 'best' (the
      best evaluation's, see `BestCheckpoint`); default: the latest.
    gin_params: Bindings applied after the run's config (e.g. another
      `Trainer.eval_batch_size`).
    ema_weights: With an optimizer that keeps moving averages (`use_ema`),
      use them as the model's weights.

  Returns:
    The restored run.

  Raises:
    ConfigError: `model_dir` holds no run's config, or no such checkpoint.
    CheckpointReadError, CheckpointMismatchError: The checkpoint cannot be used.
  """
  model_dir = os.path.abspath(model_dir) if '://' not in model_dir else model_dir
  config = os.path.join(model_dir, OPERATIVE_CONFIG)
  if not tf.io.gfile.exists(config):
    raise ConfigError(f'{model_dir} holds no {OPERATIVE_CONFIG}: give the model_dir of a run '
                      'that trained at least one loop')
  gin.clear_config()
  # One device: evaluating needs no cluster, and must not wait for one.
  gin_files.parse([config], [*gin_params, f'Trainer.model_dir = {model_dir!r}',
                             'Trainer.strategy = None'])
  trainer = _trainer_class()()
  trainer.compiled_loop()  # Creates every variable the checkpoint holds.
  trainer.checkpoints.track(trainer.checkpoint_items(), model=trainer.model,
                            settings=trainer.checkpoint_settings())
  path = _checkpoint_path(trainer.checkpoints, checkpoint)
  trainer.checkpoints.restore(path)
  if ema_weights and getattr(keras_configurables.unwrapped(trainer.optimizer), 'use_ema', False):
    trainer.optimizer.finalize_variable_values(trainer.model.trainable_variables)
  logging.info('Restored %s (step %d).', path, int(trainer.global_step.numpy()))
  return RestoredRun(trainer, path)


def _trainer_class() -> type:
  """The Trainer class the run's config names (`main.trainer_class`), or Trainer."""
  return gin.get_bindings(experiment.run_experiment).get('trainer_class', Trainer)


def _checkpoint_path(checkpoints: Checkpoints, checkpoint: Optional[str]) -> str:
  """The path of `checkpoint`: 'best', a path, a name in the run's checkpoints; or the latest."""
  directory = checkpoints.directory
  if checkpoint in (None, BEST):
    path = tf.train.latest_checkpoint(
        checkpoints.best_directory if checkpoint == BEST else directory)
    if path is None:
      raise ConfigError(f'{directory} holds no checkpoint yet' if checkpoint is None else
                        f'{directory} holds no best checkpoint (it is kept when the run '
                        "binds BestCheckpoint.monitor, e.g. 'loss')")
    return path
  path = checkpoint if os.path.dirname(checkpoint) else os.path.join(directory, checkpoint)
  if not tf.io.gfile.exists(f'{path}.index'):
    listed = tf.train.get_checkpoint_state(directory)
    names = [os.path.basename(p) for p in listed.all_model_checkpoint_paths] if listed else []
    raise ConfigError(f'no checkpoint {checkpoint!r} in {directory}; it holds '
                      f'{names or "none"} (or give --checkpoint={BEST})')
  return path


def save_outputs(path: str, outputs: Any) -> None:
  """Writes a model's outputs: one array as `.npy`, several as `.npz` (output_0, ... or names)."""
  if isinstance(outputs, np.ndarray):
    np.save(path, outputs)
    return
  named = (outputs if isinstance(outputs, dict)
           else {f'output_{i}': value for i, value in enumerate(keras.tree.flatten(outputs))})
  np.savez(path, **{name: np.asarray(value) for name, value in named.items()})


