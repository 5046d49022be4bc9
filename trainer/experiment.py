"""The experiment `main.py` runs: which Trainer class, built from gin, trained."""

from __future__ import annotations

from typing import Callable, Dict

import gin

from trainer.trainer import Trainer


@gin.configurable('main')
def run_experiment(trainer_class: Callable[[], Trainer] = Trainer) -> Dict[str, float]:
  """Builds the Trainer from gin and trains it to the end.

  Args:
    trainer_class: The Trainer or a subclass (`main.trainer_class =
      @VAETrainer`); `Trainer.*` bindings apply to subclasses too.

  Returns:
    The final evaluation's scalars.
  """
  return trainer_class().train()
