"""How a command ends on a user's mistake: one `error:` line and an exit code."""

from __future__ import annotations

import contextlib
import sys
import traceback
from typing import Iterator, NoReturn

import tensorflow as tf
from absl import logging

from gin_trainer import errors
from gin_trainer.config import gin_files

USAGE_ERROR = 2  # The shell's convention: a mistake in the command or the configuration.


def fail(message: str, exit_code: int) -> NoReturn:
  """Prints `error: message` (and, at --verbosity=1 or more, the traceback) and exits."""
  print(f'error: {message}', file=sys.stderr)
  if logging.level_debug():
    traceback.print_exc()
  sys.exit(exit_code)


@contextlib.contextmanager
def exit_on_user_errors() -> Iterator[None]:
  """Turns the framework's errors raised inside the block into `fail`.

  Exit 2 for a configuration mistake (a gin file or binding gin cannot
  use, a required binding not given, a value out of range); 1 for another
  error the framework names (data, checkpoints, a NaN loss, a lost worker).
  """
  try:
    yield
  except (gin_files.BadConfig, errors.ConfigError) as error:
    fail(errors.user_message(error), USAGE_ERROR)
  except errors.TrainerError as error:
    fail(errors.user_message(error), 1)
  except RuntimeError as error:
    missing = gin_files.missing_bindings(error)
    if missing is None:
      raise
    fail(missing, USAGE_ERROR)
  except tf.errors.UnavailableError as error:  # A cluster's worker stopped or is unreachable.
    reason = str(error).strip().splitlines()[0][:300]
    fail(f'another worker of the cluster stopped or cannot be reached ({reason}); see its log, '
         'then rerun every worker to resume', 1)
