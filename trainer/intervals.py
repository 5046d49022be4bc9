"""Intervals in steps or epochs, and how far the next loop may run.

Every periodic event of a run (summaries, evaluation, checkpoints, the end
of an epoch) is an `Interval`. Once the number of steps per epoch is known,
each one is simply "every `m` global steps", so the Trainer can compute, on
the host and without touching the device, how many steps its next on-device
loop may run before some event is due.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional


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
      raise ValueError(f"an interval's unit is 'steps' or 'epochs', not {self.unit!r}")
    if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
      raise ValueError(f'an interval is a positive whole number of {self.unit}, not {self.count!r}')

  @classmethod
  def from_either(cls, what: str, steps: Optional[int], epochs: Optional[int],
                  required: bool = True) -> Optional['Interval']:
    """Builds an interval from a pair of `*_steps` / `*_epochs` arguments.

    Args:
      what: The name of the pair for error messages, e.g. 'Trainer.eval_every'.
      steps: The value given in steps, or None.
      epochs: The value given in epochs, or None.
      required: Whether giving neither is an error (else returns None).

    Returns:
      The interval, or None when neither was given and it is not required.

    Raises:
      ValueError: Both were given, or neither while `required`, or a count
        is not a positive integer.
    """
    if steps is not None and epochs is not None:
      raise ValueError(f'give {what}_n_steps or {what}_n_epochs, not both '
                       f'(got {steps} steps and {epochs} epochs)')
    if steps is not None:
      return cls(steps, 'steps')
    if epochs is not None:
      return cls(epochs, 'epochs')
    if required:
      raise ValueError(f'give one of {what}_n_steps or {what}_n_epochs')
    return None

  def in_steps(self, steps_per_epoch: Optional[int]) -> int:
    """Returns the period as a number of global steps."""
    if self.unit == 'steps':
      return self.count
    if steps_per_epoch is None:
      raise ValueError(
          f'an interval of {self.count} epoch(s) needs the number of steps per '
          'epoch, but the training data has no known size; give the interval '
          'in steps, or bind Trainer.steps_per_epoch')
    return self.count * steps_per_epoch

  def is_due(self, step: int, steps_per_epoch: Optional[int]) -> bool:
    """Whether a period ends exactly at global step `step` (> 0)."""
    return step > 0 and step % self.in_steps(steps_per_epoch) == 0


def steps_to_next_boundary(step: int, periods: Iterable[int], last_step: int) -> int:
  """How many steps the next loop may run without crossing an event.

  Args:
    step: The global step the loop starts at.
    periods: Periods in steps of every event to stop at (summaries, eval,
      checkpoints, epoch ends, and the cap on steps per loop).
    last_step: The step training ends at.

  Returns:
    The largest n >= 1 such that no period ends strictly inside
    (step, step + n) and step + n <= last_step.
  """
  n = last_step - step
  for period in periods:
    n = min(n, period - step % period)
  return n
