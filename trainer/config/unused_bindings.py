"""Bindings the run never uses: a configurable bound but never called (`adam.*` with `@sgd`)."""

from __future__ import annotations

import re
from typing import Dict, List

import gin
from absl import logging

from gin_trainer.errors import ConfigError

# A binding's first line in gin's listings: 'scope/selector.param = value'.
_BINDING = re.compile(r'^([\w./]+)\.(\w+) = ', re.MULTILINE)


def unused() -> Dict[str, List[str]]:
  """The bound configurables gin has not called so far, with their bound parameters."""
  called = {selector for selector, _ in _BINDING.findall(gin.operative_config_str())}
  found: Dict[str, List[str]] = {}
  for selector, parameter in _BINDING.findall(gin.config_str()):
    if selector not in called:
      found.setdefault(selector, []).append(f'{selector}.{parameter}')
  return found


def check(strict: bool) -> None:
  """Warns about (or, if `strict`, refuses) bindings of configurables the run never called.

  Call it once the run has built everything it uses (its model, optimizer,
  data and loop), before training.

  Raises:
    ConfigError: `strict`, and some bindings are unused.
  """
  found = unused()
  if not found:
    return
  bindings = ', '.join(binding for names in found.values() for binding in names)
  never = ', '.join(selector.split('/')[-1] for selector in found)
  message = (f'bindings the run never uses: {bindings} (it never calls {never}); remove them, '
             'or bind what calls them (e.g. Trainer.optimizer=@adam for adam.*)')
  if strict:
    raise ConfigError(message)
  logging.warning('%s. --strict_bindings makes this an error.', message)
