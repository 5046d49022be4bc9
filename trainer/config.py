"""Reading gin files and bindings the way `main.py` promises."""

from __future__ import annotations

import dataclasses
import logging
import os
import tokenize
from typing import Any, Dict, List, Sequence

import gin
from gin import config_parser

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIN_CONFIGS_DIR = os.path.join(PROJECT_DIR, 'gin_configs')
SEARCH_DIRS = (PROJECT_DIR, GIN_CONFIGS_DIR)


class _DropGinSearchMisses(logging.Filter):
  """gin logs an ERROR for every search directory that lacks an included
  file, which is how a search path works, not an error; drop those lines."""

  def filter(self, record: logging.LogRecord) -> bool:
    return record.module != 'resource_reader'


class BadBinding(ValueError):
  """A binding gin cannot parse or apply, or its flag cannot take; the message names the flag.

  Args:
    flag: The flag's name, e.g. '--gin_param'.
    binding: The flag's value.
    error: What gin raised, or why the flag cannot take the binding.
  """

  def __init__(self, flag: str, binding: str, error: Exception):
    if isinstance(error, SyntaxError):
      where = f' (column {error.offset + 1})' if error.offset is not None else ''
      message = error.msg + where
    elif isinstance(error, tokenize.TokenError):  # An unclosed bracket or string.
      message = f'{error.args[0]}: unclosed bracket or quote?'
    else:  # gin's later lines repeat the binding, which the message starts with.
      message = str(error).split('\n')[0]
    super().__init__(f'{flag}={binding!r}: {message}')


@dataclasses.dataclass(frozen=True)
class Reference:
  """A gin reference (`@name`, `@name()`, `%macro`) read as text, without its target.

  Its `repr` is that text, so `repr` of a value that holds references (a
  tuple, a dict) is gin syntax again.
  """
  text: str

  def __repr__(self) -> str:
    return self.text


class _ReferencesAsText(config_parser.ParserDelegate):
  """Parses references without looking them up, so no module has to register them."""

  def configurable_reference(self, scoped_configurable_name: str, evaluate: bool) -> Reference:
    return Reference(f'@{scoped_configurable_name}' + ('()' if evaluate else ''))

  def macro(self, macro_name: str) -> Reference:
    return Reference(f'%{macro_name}')


def read_bindings(bindings: Sequence[str], flag: str = '--gin_param') -> Dict[str, Any]:
  """The key and value of each binding, parsed by gin but not applied.

  Values keep their gin types: numbers, strings, booleans, None, tuples,
  lists and dicts as Python values, references as `Reference`.

  Args:
    bindings: Binding strings such as `adam.learning_rate = 1e-3`.
    flag: The flag that gave them, named in errors.

  Returns:
    `{key: value}`, keys as written (`scope/selector.param`, or a macro's
    name); for a key given twice, the last value, as gin applies it.

  Raises:
    BadBinding: A binding is not valid gin syntax.
  """
  values: Dict[str, Any] = {}
  for binding in bindings:
    try:
      statements = list(config_parser.ConfigParser(binding, _ReferencesAsText()))
    except (SyntaxError, tokenize.TokenError) as error:
      raise BadBinding(flag, binding, error) from None
    for statement in statements:
      if isinstance(statement, config_parser.BindingStatement):
        name = '.'.join(part for part in (statement.selector, statement.arg_name) if part)
        values['/'.join(part for part in (statement.scope, name) if part)] = statement.value
  return values


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

  Raises:
    BadBinding: gin cannot parse or apply one of `gin_params` (a syntax
      error, an unknown name); the message names it.
  """
  for directory in SEARCH_DIRS:
    gin.add_config_file_search_path(directory)
  logging.getLogger().addFilter(_DropGinSearchMisses())  # gin logs to the root logger.
  gin.parse_config_files_and_bindings([resolve(f) for f in gin_files], None,
                                      finalize_config=False)
  for binding in gin_params:  # One at a time, so an error can name its flag.
    try:
      gin.parse_config(binding)
    except (SyntaxError, tokenize.TokenError, ValueError) as error:
      raise BadBinding('--gin_param', binding, error) from None
  gin.finalize()
