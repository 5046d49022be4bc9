"""The registered gin names closest to a misspelt one, for error messages."""

from __future__ import annotations

import difflib
import inspect
import re
from typing import List

from gin import config as gin_config

# gin's messages for an unknown configurable (or reference) and an unknown parameter.
_UNKNOWN_CONFIGURABLE = re.compile(r"No configurable matching (?:reference )?'@?([\w.]+?)(?:\(\))?'")
_UNKNOWN_PARAMETER = re.compile(r"Configurable '([\w.]+)' doesn't have a parameter named '(\w+)'")

# Bindings that moved, old name -> new name (README, "Renamed bindings").
RENAMED = {
    'Trainer.checkpoint_every_n_steps': 'Checkpoints.every_n_steps',
    'Trainer.checkpoint_every_n_epochs': 'Checkpoints.every_n_epochs',
    'Trainer.checkpoint_every_n_seconds': 'Checkpoints.every_n_seconds',
    'Trainer.max_checkpoints_to_keep': 'Checkpoints.max_to_keep',
}


def configurable_names() -> List[str]:
  """Every registered configurable, by its short name and by its full selector."""
  # gin has no public listing of its registry (tests/test_config.py guards this use).
  names = set()
  for selector, configurable in gin_config._REGISTRY.items():  # pylint: disable=protected-access
    names.update((selector, configurable.name))
  return sorted(names)


def parameter_names(selector: str) -> List[str]:
  """The parameters a binding may set on the configurable `selector` ([] if unknown)."""
  # gin has no public look-up of a configurable (tests/test_config.py guards this use).
  configurable = gin_config._REGISTRY.get_match(selector)  # pylint: disable=protected-access
  if configurable is None:
    return []
  try:
    parameters = inspect.signature(configurable.wrapped).parameters.values()
  except (TypeError, ValueError):  # A builtin without a signature.
    return []
  names = [p.name for p in parameters
           if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != 'self']
  return [name for name in names
          if name not in (configurable.denylist or ()) and
          (not configurable.allowlist or name in configurable.allowlist)]


def did_you_mean(gin_message: str) -> str:
  """'; did you mean ...?' for gin's message about an unknown name, else ''.

  Args:
    gin_message: What gin raised, e.g. "No configurable matching 'Trainr'."
      or "Configurable 'Trainer' doesn't have a parameter named 'batchsize'."
  """
  parameter = _UNKNOWN_PARAMETER.search(gin_message)
  if parameter:
    selector, name = parameter.groups()
    renamed = RENAMED.get(f'{selector.split(".")[-1]}.{name}')
    if renamed:
      return f'; it was renamed: bind {renamed} instead'
    known, wrong = parameter_names(selector), name
  else:
    configurable = _UNKNOWN_CONFIGURABLE.search(gin_message)
    if not configurable:
      return ''
    known, wrong = configurable_names(), configurable.group(1)
  close = difflib.get_close_matches(wrong, known, n=3, cutoff=0.7)
  if close:
    return '; did you mean ' + ' or '.join(repr(name) for name in close) + '?'
  if parameter:
    return f'; {parameter.group(1)} takes: {", ".join(known)}'
  return '; check the spelling, or import the module that registers it (a gin `import` line)'
