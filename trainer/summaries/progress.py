"""The one console line a run logs per summary interval."""

from __future__ import annotations

import datetime
from typing import Dict, Optional

from gin_trainer.summaries import tags



# A run is input-bound when its steps wait for input at least this share of the
# time: from there the input pipeline, not the model, sets the pace.
INPUT_BOUND = 0.5


def input_bound_line(step: int, waiting: float) -> str:
  """The console's advice when the input pipeline sets the run's pace."""
  return (f'The input pipeline sets the pace: by step {step}, steps waited {waiting:.0%} of their '
          'time for the next batch. See "Input-bound runs" in the README: cache, parallel '
          'map, prefetch, or Trainer.data_on_device.')


def scalars_text(values: Dict[str, float]) -> str:
  """`name=value` pairs, compactly formatted, timings left out, tags shortened (`short_name`)."""
  return ' '.join(f'{short_name(name)}={value:.4g}'
                  for name, value in values.items() if name not in tags.TIMINGS)


def short_name(tag: str) -> str:
  """A tag without the framework's `schedule/` or `precision/` group."""
  return tag.removeprefix(tags.SCHEDULE).removeprefix(tags.PRECISION)


def line(step: int, total_steps: int, steps_per_epoch: Optional[int],
         values: Dict[str, float], seconds_per_step: Optional[float]) -> str:
  """E.g. `step 620/1550 | epoch 20/50 | loss=0.0123 mae=0.0891 | 5120 steps/s | ETA 0:00:01`.

  Args:
    step: The global step reached.
    total_steps: The step training ends at.
    steps_per_epoch: Steps per epoch, or None when unknown.
    values: The interval's scalars, including `tags.STEPS_PER_SECOND`.
    seconds_per_step: The run's steady speed, for the ETA: not that of a
      call that compiled (None until there is one; the ETA is then '?').

  Returns:
    The line.
  """
  parts = [f'step {step}/{total_steps}']
  if steps_per_epoch:
    parts.append(f'epoch {step / steps_per_epoch:.4g}/{total_steps / steps_per_epoch:.4g}')
  parts.append(scalars_text(values))
  parts.append(f"{values[tags.STEPS_PER_SECOND]:.4g} steps/s")
  eta = ('?' if seconds_per_step is None else
         datetime.timedelta(seconds=round((total_steps - step) * seconds_per_step)))
  parts.append(f'ETA {eta}')
  return ' | '.join(parts)
