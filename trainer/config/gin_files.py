"""Reading gin files and bindings the way `main.py` promises."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import sys
import tempfile
import tokenize
from typing import IO, Any, Dict, Iterator, List, Optional, Sequence

import gin
from gin import config_parser

from gin_trainer import gin_configs
from gin_trainer.config import gin_names

GIN_CONFIGS_DIR = os.path.dirname(os.path.abspath(gin_configs.__file__))


class _DropGinSearchMisses(logging.Filter):
  """gin logs an ERROR for every search directory that lacks an included
  file, which is how a search path works, not an error; drop those lines."""

  def filter(self, record: logging.LogRecord) -> bool:
    return record.module != 'resource_reader'


class BadConfig(ValueError):
  """A --gin_file or --gin_param gin cannot use: a usage mistake (main.py exits with 2)."""


class BadBinding(BadConfig):
  """A binding gin cannot parse or apply, or its flag cannot take; the message names the flag.

  Args:
    flag: The flag's name, e.g. '--gin_param'.
    binding: The flag's value.
    error: What gin raised, or why the flag cannot take the binding.
  """

  def __init__(self, flag: str, binding: str, error: Exception):
    super().__init__(f'{flag}={binding!r}: {_reason(error, binding)}')


class BadGinFile(BadConfig):
  """A --gin_file that is missing, or that gin cannot parse or apply.

  The message names the flag and, for an error inside a file (or a file it
  includes), the file and line.

  Args:
    gin_file: The flag's value.
    error: What gin raised; a str says what is wrong as it is.
  """

  def __init__(self, gin_file: str, error: Exception | str):
    if isinstance(error, str):
      where, reason = '', error
    else:
      where, reason = _location(error), _reason(error)
    super().__init__(f'--gin_file={gin_file!r}: {where}{reason}')


def _reason(error: Exception, binding: str | None = None) -> str:
  """gin's error in one line, with a close name for an unknown one.

  Args:
    error: What gin raised.
    binding: The binding that raised it, when given on its own (a flag).
  """
  if isinstance(error, SyntaxError) and error.msg.startswith(_UNREADABLE_VALUE):
    return _quote_it(binding or (error.text or '').strip())
  if isinstance(error, SyntaxError):
    where = f' (column {error.offset + 1})' if error.offset is not None else ''
    return error.msg + where
  if isinstance(error, tokenize.TokenError):  # An unclosed bracket or string.
    return f'{error.args[0]}: unclosed bracket or quote?'
  # gin's later lines say where, which the flag or _location tells already.
  first = str(error).split('\n')[0]
  missing = re.match(r'Unable to open file: (.*?)\. Searched config paths', first)
  if missing:
    return (f'include {missing.group(1)!r}: no such file next to the including file, in the '
            'working directory or in gin_configs/')
  # An allowlisted configurable (a Keras optimizer) says it in its own words.
  first = re.sub(r"doesn't include kwarg '(\w+)' in its allowlist",
                 r"doesn't have a parameter named '\1'", first)
  suggestion = gin_names.did_you_mean(first)
  return first.rstrip('.') + suggestion if suggestion else first


# How gin's parser says a value is not a literal, a reference or a macro.
_UNREADABLE_VALUE = ('malformed node or string', 'Unable to parse value')


def _quote_it(binding: str) -> str:
  """The advice for a value gin cannot read: most often, a string without quotes."""
  key, equals, value = binding.partition('=')
  quoted = f'{key.strip()}="{value.strip()}"' if equals and value.strip() else (
      'Trainer.model_dir="runs/my_run"')
  return (f'gin cannot read this value; a string needs quotes, e.g. {quoted} (on the command '
          f"line: --gin_param='{quoted}'), and a configurable an @ (@adam)")


def _location(error: Exception) -> str:
  """'FILE, line N: ' of an error gin raised while reading a file, if it says."""
  if isinstance(error, SyntaxError) and error.filename:
    return f'{error.filename}, line {error.lineno}: '
  found = re.search(r'\n  In file "(.*)", line (\d+)', str(error))
  return f'{found.group(1)}, line {found.group(2)}: ' if found else ''


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


def candidates(gin_file: str, including_dir: Optional[str] = None,
               working_dir: Optional[str] = None) -> List[str]:
  """Where a .gin file is looked for, in order (each place once).

  Args:
    gin_file: A --gin_file flag's value, or the name in an `include`.
    including_dir: For an `include`, the folder of the file that includes it.
    working_dir: The user's working directory; by default, the current one.
  """
  if os.path.isabs(gin_file):
    return [gin_file]
  folders = [including_dir] if including_dir else []
  folders += [working_dir or os.getcwd(), GIN_CONFIGS_DIR]
  return list(dict.fromkeys(os.path.join(folder, gin_file) for folder in folders))


def resolve(gin_file: str) -> str:
  """The path of a --gin_file: as given (from the working directory), else in `gin_configs/`.

  Raises:
    BadGinFile: No candidate exists; the message lists them all.
  """
  tried = candidates(gin_file)
  for path in tried:
    if os.path.isfile(path):
      return path
  raise BadGinFile(gin_file, 'no such file; looked for ' + ', '.join(tried) +
                   '; give the path of a .gin file, or the name of one in gin_configs/')


class _Includes:
  """Finds each `include` next to the file that includes it first.

  gin looks for a relative include in the working directory before asking
  the readers registered with it; while gin reads, the working directory is
  an empty folder, so gin asks this reader, which looks in the including
  file's folder, then the user's working directory, then `gin_configs/`.
  Each file's folder also goes on `sys.path`, so a gin `import` finds a
  module next to the file.
  """

  def __init__(self):
    self._folders: List[str] = []  # Of the files being read, innermost last.
    self._working_dir = os.getcwd()

  def find(self, name: str) -> Optional[str]:
    """The path of a relative include, or None (gin reads an absolute one itself)."""
    if os.path.isabs(name):
      return None
    for path in candidates(name, self._folders[-1] if self._folders else None,
                           self._working_dir):
      if os.path.isfile(path):
        return path
    return None

  def exists(self, name: str) -> bool:
    return self.find(name) is not None

  @contextlib.contextmanager
  def open(self, name: str) -> Iterator[IO[str]]:
    path = self.find(name)
    with self.reading(path), open(path, encoding='utf-8') as file:
      yield file

  @contextlib.contextmanager
  def reading(self, path: str) -> Iterator[None]:
    """While gin reads `path`: its includes and imports are found next to it."""
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
      sys.path.insert(0, folder)
    self._folders.append(folder)
    try:
      yield
    finally:
      self._folders.pop()

  @contextlib.contextmanager
  def while_gin_reads(self) -> Iterator[None]:
    """Makes gin ask `open` for every relative include (see the class docstring)."""
    self._working_dir = os.getcwd()
    gin.config.register_file_reader(self.open, self.exists)  # Once: gin skips a known reader.
    with tempfile.TemporaryDirectory() as empty:
      os.chdir(empty)
      try:
        yield
      finally:
        os.chdir(self._working_dir)


_INCLUDES = _Includes()


def parse(gin_files: Sequence[str], gin_params: Sequence[str]) -> None:
  """Applies gin files, then bindings, each in the order given (later wins).

  This is gin's own convention (`gin.parse_config_files_and_bindings`). A
  --gin_file is looked for as given (from the working directory), then in
  `gin_configs/`, so `regression.gin` works from anywhere. An `include` is
  looked for next to the file that includes it, then in the working
  directory and `gin_configs/`; a gin `import` finds a module next to the
  file that imports it.

  Args:
    gin_files: Paths of .gin files.
    gin_params: Bindings such as `Trainer.train_steps = 100`.

  Raises:
    BadGinFile: A file is missing, or gin cannot parse or apply it (a
      syntax error, an unknown name, a missing include or import); the
      message names the file and line.
    BadBinding: gin cannot parse or apply one of `gin_params` (a syntax
      error, an unknown name); the message names it.
  """
  logging.getLogger().addFilter(_DropGinSearchMisses())  # gin logs to the root logger.
  paths = [resolve(f) for f in gin_files]  # All found before any is applied.
  with _INCLUDES.while_gin_reads():
    for gin_file, path in zip(gin_files, paths):  # One at a time, so an error can name its flag.
      try:
        with _INCLUDES.reading(path):
          gin.parse_config_file(path)
      except (SyntaxError, tokenize.TokenError, ValueError, OSError, ImportError) as error:
        raise BadGinFile(gin_file, error) from None
  for binding in gin_params:  # One at a time, so an error can name its flag.
    try:
      gin.parse_config(binding)
    except (SyntaxError, tokenize.TokenError, ValueError) as error:
      raise BadBinding('--gin_param', binding, error) from None
  gin.finalize()


_MISSING = re.compile(r'Required bindings for `([\w.]+)` not provided in config: \[([^\]]*)\]')


def missing_bindings(error: RuntimeError) -> str | None:
  """The advice for gin's error about required bindings not given, or None for another error.

  gin raises it (a RuntimeError) when it calls a configurable, e.g. the
  Trainer without `model_dir`.
  """
  found = _MISSING.search(str(error))
  if found is None:
    return None
  selector = found.group(1).split('.')[-1]
  names = [f'{selector}.{name}' for name in re.findall(r"'(\w+)'", found.group(2))]
  example = ('Trainer.model_dir="runs/my_run"' if 'Trainer.model_dir' in names
             else f'{names[0]}=...')
  return (f'{", ".join(names)} must be bound: bind {"it" if len(names) == 1 else "them"} in a '
          f"--gin_file or with --gin_param, e.g. --gin_param='{example}'")

