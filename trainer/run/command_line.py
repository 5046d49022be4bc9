"""What started a run: its command line and the bindings given on it, kept in model_dir."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from typing import List, Sequence

COMMAND_LINE_FILE = 'command_line.json'


@dataclasses.dataclass(frozen=True)
class CommandLine:
  """A training command as it was typed.

  Attributes:
    cwd: The working directory (relative --gin_file paths are relative to it).
    command_line: The command, shell-quoted, ready to paste.
    gin_files: The --gin_file flags, in order.
    gin_params: The --gin_param bindings, in order.
  """
  cwd: str
  command_line: str
  gin_files: List[str]
  gin_params: List[str]

  @classmethod
  def of_this_process(cls, gin_files: Sequence[str], gin_params: Sequence[str]) -> CommandLine:
    """The command that started this Python process, with its parsed gin flags."""
    main_spec = getattr(sys.modules['__main__'], '__spec__', None)  # Set under `python -m`.
    program = ['-m', main_spec.name] if main_spec is not None else sys.argv[:1]
    return cls(os.getcwd(), shlex.join([sys.executable, *program, *sys.argv[1:]]),
               list(gin_files), list(gin_params))

  def save(self, model_dir: str) -> None:
    """Writes `model_dir/command_line.json`."""
    with open(os.path.join(model_dir, COMMAND_LINE_FILE), 'w') as f:
      json.dump(dataclasses.asdict(self), f, indent=2)
      f.write('\n')
