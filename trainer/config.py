"""Reading gin files and bindings the way `main.py` promises."""

from __future__ import annotations

import logging
import os
from typing import List, Sequence

import gin

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIN_CONFIGS_DIR = os.path.join(PROJECT_DIR, 'gin_configs')
SEARCH_DIRS = (PROJECT_DIR, GIN_CONFIGS_DIR)


class _DropGinSearchMisses(logging.Filter):
  """gin logs an ERROR for every search directory that lacks an included
  file, which is how a search path works, not an error; drop those lines."""

  def filter(self, record: logging.LogRecord) -> bool:
    return record.module != 'resource_reader'


def candidates(gin_file: str) -> List[str]:
  """Where a --gin_file is looked for, in order."""
  if os.path.isabs(gin_file):
    return [gin_file]
  return [os.path.abspath(gin_file)] + [os.path.join(d, gin_file) for d in SEARCH_DIRS]


def resolve(gin_file: str) -> str:
  """The path of a --gin_file: as given, else in the project or `gin_configs/`.

  Raises:
    FileNotFoundError: No candidate exists; the message lists them all.
  """
  tried = candidates(gin_file)
  for path in tried:
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(f'gin file {gin_file!r} not found; looked for ' + ', '.join(tried))


def parse(gin_files: Sequence[str], gin_params: Sequence[str]) -> None:
  """Applies gin files, then bindings, each in the order given (later wins).

  This is gin's own convention (`gin.parse_config_files_and_bindings`). A
  file is looked for as given (relative to the working directory), then in
  the project directory and in `gin_configs/`, so `regression.gin` and
  `gin_configs/regression.gin` both work from anywhere; `include`
  statements inside .gin files are resolved the same way.

  Args:
    gin_files: Paths of .gin files.
    gin_params: Bindings such as `Trainer.train_steps = 100`.
  """
  for directory in SEARCH_DIRS:
    gin.add_config_file_search_path(directory)
  logging.getLogger().addFilter(_DropGinSearchMisses())  # gin logs to the root logger.
  gin.parse_config_files_and_bindings([resolve(f) for f in gin_files], gin_params)
