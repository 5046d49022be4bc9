"""The experiment `main.py` runs: which Trainer class, built from gin, trained and recorded."""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import gin
from absl import logging

from gin_trainer.config import gin_files, unused_bindings
from gin_trainer.summaries import hparams, progress
from gin_trainer.run.command_line import CommandLine
from gin_trainer.trainer import Trainer

# Shown in the HParams dashboard when bound, given on the command line or not.
HPARAM_KEYS = ('Trainer.optimizer', 'adam.learning_rate', 'Trainer.batch_size')


@gin.configurable('main', denylist=['command_line', 'strict_bindings', 'trial_name'])
def run_experiment(trainer_class: Callable[[], Trainer] = Trainer,
                   hparam_keys: Sequence[str] = HPARAM_KEYS,
                   command_line: Optional[CommandLine] = None,
                   strict_bindings: bool = False,
                   trial_name: Optional[str] = None) -> Dict[str, float]:
  """Builds the Trainer from gin, trains it to the end and records the run.

  A run that has something to train saves `command_line` to model_dir (once
  it holds the directory); once it finishes, it writes its hyper-parameters
  for TensorBoard's HParams dashboard (`trainer.hparams`). A finished run
  rerun writes nothing.

  Args:
    trainer_class: The Trainer or a subclass (`main.trainer_class =
      @VAETrainer`); `Trainer.*` bindings apply to subclasses too.
    hparam_keys: Bindings to show as hyper-parameters when bound, beside
      every binding given on the command line (`main.hparam_keys = [...]`).
    command_line: What started this run (main.py gives it).
    strict_bindings: Refuse bindings of configurables the run never calls
      (a ConfigError, before training) instead of warning about them.
    trial_name: The run's name in the HParams table; by default its
      model_dir's name.

  Returns:
    The final evaluation's scalars; {} if the run had finished already.
  """
  run = trainer_class()
  run.compiled_loop()  # Calls every configurable the run uses.
  unused_bindings.check(strict_bindings)
  record = (lambda: command_line.save(run.model_dir)) if command_line is not None else None
  final = run.train(on_start=record)
  if run.is_chief and not hparams.written(run.model_dir):  # Only a finished run writes them.
    given = gin_files.read_bindings(command_line.gin_params) if command_line is not None else {}
    hparams.write(run.model_dir, hparams.collect(given, hparam_keys), trial_name)
  if final:
    logging.info('Done: %s. Results in %s (tensorboard --logdir %s).',
                 progress.scalars_text(final), run.model_dir, run.model_dir)
  return final
