"""Errors that mean bad input or a stopped run, not a bug: main.py prints them in one line."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence


class TrainerError(Exception):
  """A problem the user can fix; the message says what and how."""


class ConfigError(TrainerError, ValueError):
  """A binding's value is wrong: a wrong type, out of range, or in conflict with another."""


class DataError(TrainerError):
  """A data set is missing, unreadable, or does not fit the model."""


class ModelError(TrainerError):
  """A model's step returns what the Trainer cannot log (not a dict of scalars)."""


def user_message(error: BaseException) -> str:
  """The error's message without the lines gin appends about where it was raised."""
  return str(error).split('\n  In call to configurable')[0]


class NonFiniteError(TrainerError):
  """A watched scalar became NaN or infinite.

  Args:
    step: The step at which it did.
    tag: The scalar.
    value: Its value there.
    checkpoint: The last checkpoint saved before it, if any.
    clipping: The binding that clips the optimizer's gradients
      (e.g. 'sgd.global_clipnorm').
  """

  def __init__(self, step: int, tag: str, value: float, checkpoint: Optional[str],
               clipping: str):
    advice = (f"lower the learning rate or clip gradients (e.g. --gin_param='{clipping}=1.0')")
    if checkpoint:
      then = f'The last good checkpoint is {checkpoint}. To resume from it, {advice}, and rerun.'
    else:
      then = f'No checkpoint was saved before it, so a rerun starts from step 0: {advice} first.'
    super().__init__(f'{tag} is {value} at step {step}; stopped without saving it. {then}')
    self.step = step
    self.tag = tag


class CheckpointMismatchError(TrainerError):
  """A checkpoint holds another model than the one configured."""

  def __init__(self, path: str, mismatches: Sequence[str]):
    shown = list(mismatches[:10]) + ([f'... and {len(mismatches) - 10} more']
                                     if len(mismatches) > 10 else [])
    super().__init__(
        f'checkpoint {path}: holds another model than the configured one '
        f'({len(mismatches)} difference(s), listed below); use a new Trainer.model_dir, or the '
        'bindings this run was started with (its operative_config.gin)\n  ' + '\n  '.join(shown))


class CheckpointSettingsError(TrainerError):
  """A checkpoint was trained with other values of bindings that must not change on resume."""

  def __init__(self, path: str, saved: Mapping[str, str], current: Mapping[str, str]):
    was = ', '.join(f'{name}={value!r}' for name, value in saved.items())
    now = ', '.join(f'{name}={current[name]!r}' for name in saved)
    super().__init__(
        f'checkpoint {path} was trained with {was}, and this run sets {now}; resume with '
        f'{was}, or start a new Trainer.model_dir')


class CheckpointReadError(TrainerError):
  """A checkpoint's files cannot be read (truncated, corrupt, missing)."""


class CheckpointWriteError(TrainerError):
  """A checkpoint could not be saved."""


class ModelDirInUseError(TrainerError):
  """Another process is training in the same model_dir."""


class Interrupted(Exception):
  """The run stopped on SIGTERM or SIGINT after saving a checkpoint.

  Attributes:
    signal_number: The signal that asked the run to stop.
  """

  def __init__(self, signal_name: str, signal_number: int, step: int, checkpoint: str):
    super().__init__(f'stopped by {signal_name} at step {step}; saved {checkpoint}. '
                     'Rerun the same command to continue.')
    self.signal_number = signal_number
