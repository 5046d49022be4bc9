"""gin-trainer: a gin-configured custom training loop with TensorBoard summaries.

`Trainer` (trainer.py) owns a run's settings, collaborators and extension
points; `TrainingRun` (training_run.py) is its host loop. They draw on five
sub-packages, none of which imports the Trainer: `config` (gin files and
bindings), `data` (the data contract and its readers), `loop` (the compiled
on-device loop), `summaries` (points, event files, console lines) and `run`
(checkpoints, lock, stop signals), plus `distribute` (strategies).
`cli` is the `gin-trainer` command; `sweep` runs it over a grid; `models`
holds the model families that ship.

This repository's `trainer/` installs as the `gin_trainer` package (see
pyproject.toml), so the distribution adds no generic top-level name.
"""

import importlib
from typing import Any, List

# Each public name and the module that defines it. They load on first use, so
# `import gin_trainer.cli` sets up the console and Ctrl-C before TensorFlow loads.
_PUBLIC = {
    'Checkpoints': 'gin_trainer.run.checkpoints',
    'CommandLine': 'gin_trainer.run.command_line',
    'Interval': 'gin_trainer.intervals',
    'SummaryManager': 'gin_trainer.summaries.manager',
    'Trainer': 'gin_trainer.trainer',
    'in_float32': 'gin_trainer.loop.precision',
    'input_pipeline': 'gin_trainer.data.pipeline',
    'keras_configurable': 'gin_trainer.config.keras_configurables',
    'restore': 'gin_trainer.restored_run',
    'run_experiment': 'gin_trainer.experiment',
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
  if name not in _PUBLIC:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> List[str]:
  return sorted({*globals(), *__all__})
