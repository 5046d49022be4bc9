"""Intervals in steps or epochs, and how far the next loop may run.

Every periodic event of a run (summaries, evaluation, checkpoints, the end
of an epoch) is an `Interval`. Once the number of steps per epoch is known,
each one is simply "every `m` global steps", so the Trainer can compute, on
the host and without touching the device, how many steps its next on-device
loop may run before some event is due.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional, Tuple

from trainer.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Interval:
  """A period of `count` steps or `count` epochs.

  Attributes:
    count: How many units make one period; a positive integer.
    unit: 'steps' or 'epochs'.
  """

  count: int
  unit: str = 'steps'

  def __post_init__(self):
    if self.unit not in ('steps', 'epochs'):
      raise ConfigError(f"an interval's unit is 'steps' or 'epochs', not {self.unit!r}")
    if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
      raise ConfigError(f'an interval is a positive whole number of {self.unit}, not {self.count!r}')

  @classmethod
  def from_either(cls, steps: Tuple[str, Optional[int]], epochs: Tuple[str, Optional[int]],
                  required: bool = True) -> Optional['Interval']:
    """Builds an interval from a pair of arguments, one in steps, one in epochs.

    Args:
      steps: The binding's name (for messages) and its value, or None.
      epochs: The same for the argument in epochs.
      required: Whether giving neither is an error (else returns None).

    Returns:
      The interval, or None when neither was given and it is not required.

    Raises:
      ConfigError: Both were given, or neither while `required`, or a count
        is not a positive integer.
    """
    (steps_name, num_steps), (epochs_name, num_epochs) = steps, epochs
    if num_steps is not None and num_epochs is not None:
      raise ConfigError(f'give {steps_name} or {epochs_name}, not both '
                       f'(got {num_steps} and {num_epochs})')
    if num_steps is not None:
      return cls._checked(steps_name, num_steps, 'steps')
    if num_epochs is not None:
      return cls._checked(epochs_name, num_epochs, 'epochs')
    if required:
      raise ConfigError(f'give one of {steps_name} or {epochs_name}')
    return None

  @classmethod
  def _checked(cls, name: str, count: int, unit: str) -> 'Interval':
    try:
      return cls(count, unit)
    except ConfigError as e:
      raise ConfigError(f'{name}: {e}') from None

  def in_steps(self, steps_per_epoch: Optional[int]) -> int:
    """Returns the period as a number of global steps."""
    if self.unit == 'steps':
      return self.count
    if steps_per_epoch is None:
      raise ConfigError(
          f'an interval of {self.count} epoch(s) needs the number of steps per '
          'epoch, but the training data has no known size; give the interval '
          'in steps, or bind Trainer.steps_per_epoch')
    return self.count * steps_per_epoch

  def is_due(self, step: int, steps_per_epoch: Optional[int]) -> bool:
    """Whether a period ends exactly at global step `step` (> 0)."""
    return step > 0 and step % self.in_steps(steps_per_epoch) == 0


def steps_to_next_boundary(step: int, periods: Iterable[int], last_step: int,
                           max_steps: int) -> int:
  """How many steps the next loop may run without crossing an event.

  Args:
    step: The global step the loop starts at.
    periods: Periods in steps of every event to stop at (summaries, eval,
      checkpoints, epoch ends).
    last_step: The step training ends at.
    max_steps: The most steps one loop may run.

  Returns:
    The largest n <= max_steps such that no period ends strictly inside
    (step, step + n) and step + n <= last_step.
  """
  n = min(last_step - step, max_steps)
  for period in periods:
    n = min(n, period - step % period)
  return n
