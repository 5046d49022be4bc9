"""Intervals in steps or epochs, and how far the next loop may run.

Every periodic event of a run (summaries, evaluation, checkpoints) is an
`Interval`. Once the number of steps per epoch is known, each one is simply
"every `m` global steps", so the Trainer can compute, on the host and
without touching the device, how many steps its next on-device loop runs.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional, Tuple

from gin_trainer.errors import ConfigError


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


def loop_length(step: int, stops: Iterable[int], last_step: int, max_steps: int,
                spanned: Optional[int] = None, max_spanned: int = 1,
                ends: Iterable[int] = ()) -> int:
  """How many steps the next loop runs.

  A loop ends at the first boundary of a `stops` period (an event the host
  runs between loops: evaluation, a checkpoint), at the next of `ends`, or
  at the last step. It
  runs on across the boundaries of `spanned` (summary intervals, whose sums
  the loop keeps apart), at most `max_spanned` of them. When a cap
  (`max_steps`, `max_spanned`) would end it between two `spanned`
  boundaries, it ends at the last boundary before the cap instead, if it
  holds one, so that its call ends whole intervals.

  Args:
    step: The global step the loop starts at.
    stops: Periods in steps of the events to stop at.
    last_step: The step training ends at.
    max_steps: The most steps one loop may run.
    spanned: The period in steps of the boundaries a loop runs across, if any.
    max_spanned: The most `spanned` boundaries in one loop.
    ends: Single global steps to end a loop at (a profile's window).

  Returns:
    The number of steps, at least 1 (if step < last_step).
  """
  to_stop = min([last_step - step, *(period - step % period for period in stops),
                 *(end - step for end in ends if end > step)])
  cap = max_steps
  if spanned:
    first = spanned - step % spanned
    cap = min(cap, first + (max_spanned - 1) * spanned)
    if to_stop > cap >= first:
      return first + (cap - first) // spanned * spanned
  return min(to_stop, cap)


class LoopSizer:
  """How many steps each loop runs: `loop_length`, with the intervals it spans set by speed.

  A loop that may run across summary intervals spans as many whole ones as
  fit in about `seconds` at the speed of the last call (one at first).

  Args:
    stops: Periods in steps of the events the host runs between loops.
    interval: The summary interval in steps.
    spans_intervals: Whether a loop may run across its boundaries (else
      they end loops too).
    last_step: The step training ends at.
    max_steps: The most steps one loop may run.
    seconds: About how long a loop that spans intervals may take.
    max_intervals: The most interval boundaries in one loop.
    ends: Single global steps to end a loop at.
  """

  def __init__(self, stops: Iterable[int], interval: int, spans_intervals: bool, last_step: int,
               max_steps: int, seconds: float, max_intervals: int, ends: Iterable[int] = ()):
    self._stops = list(stops) + ([] if spans_intervals else [interval])
    self._ends = list(ends)
    self._spanned = interval if spans_intervals else None
    self._last_step, self._max_steps = last_step, max_steps
    self._seconds, self._max_intervals = seconds, max_intervals
    self._spans = 1

  def next(self, step: int) -> int:
    """The length of the loop that starts at global step `step`."""
    return loop_length(step, self._stops, self._last_step, self._max_steps, self._spanned,
                       self._spans, self._ends)

  def measured(self, steps: int, seconds: float) -> None:
    """Learns the speed of a loop's call (`steps` in `seconds`) for the next loops.

    The first call of each function includes its compilation, so loops
    start short and settle within a few calls.
    """
    if self._spanned:
      fit = int(self._seconds * steps / seconds / self._spanned)
      self._spans = max(1, min(self._max_intervals, fit))
