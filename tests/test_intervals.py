"""Intervals and the length of the next loop."""

import pytest

from gin_trainer.intervals import Interval, LoopSizer, loop_length


def test_loop_ends_at_the_nearest_boundary_of_any_period_or_the_cap():
  # Summaries every 7 steps, evaluation every 10, loops of at most 5 steps.
  step, ends = 0, []
  while step < 30:
    step += loop_length(step, [7, 10], last_step=30, max_steps=5)
    ends.append(step)
  assert ends == [5, 7, 10, 14, 19, 20, 21, 26, 28, 30]


def test_loops_also_end_at_single_steps_such_as_a_profile_window():
  # Evaluation every 10 steps, a profile of steps 13 to 24: loops end at 12 and 24.
  step, ends = 0, []
  while step < 30:
    step += loop_length(step, [10], last_step=30, max_steps=100, ends=[12, 24])
    ends.append(step)
  assert ends == [10, 12, 20, 24, 30]
  # Across spanned summary boundaries too.
  assert loop_length(0, [], last_step=100, max_steps=100, spanned=7, max_spanned=5,
                     ends=[9]) == 9


def test_loop_never_passes_the_last_step():
  assert loop_length(95, [100], last_step=97, max_steps=1000) == 2
  assert loop_length(95, [], last_step=97, max_steps=1000, spanned=10, max_spanned=5) == 2


def test_loop_runs_across_spanned_boundaries_and_ends_whole_intervals_at_a_cap():
  # Summaries (spanned) every 7 steps, evaluation every 30, loops of at most 20 steps.
  step, ends = 0, []
  while step < 70:
    step += loop_length(step, [30], last_step=70, max_steps=20, spanned=7, max_spanned=10)
    ends.append(step)
  assert ends == [14, 30, 49, 60, 70]
  # At most two boundaries per loop; a cap below the first boundary ends the loop there.
  assert loop_length(0, [], last_step=100, max_steps=50, spanned=7, max_spanned=2) == 14
  assert loop_length(0, [], last_step=100, max_steps=5, spanned=7, max_spanned=2) == 5


def test_loops_span_the_intervals_that_fit_in_their_seconds_at_the_measured_speed():
  sizer = LoopSizer([], interval=10, spans_intervals=True, last_step=10_000, max_steps=1000,
                    seconds=1.0, max_intervals=100)
  assert sizer.next(0) == 10  # One interval until the speed is known.
  sizer.measured(10, seconds=0.001)  # 10,000 steps/s: a second holds 1000 steps.
  assert sizer.next(10) == 1000  # Capped by max_steps, ending at an interval's end.
  sizer.measured(1000, seconds=10.0)  # 100 steps/s: a second holds 10 intervals.
  assert sizer.next(1010) == 100
  sizer.measured(100, seconds=100.0)  # Slower than an interval a second: one.
  assert sizer.next(1110) == 10


def test_without_spanning_every_interval_ends_a_loop():
  sizer = LoopSizer([25], interval=10, spans_intervals=False, last_step=100, max_steps=1000,
                    seconds=1.0, max_intervals=100)
  sizer.measured(10, seconds=1e-6)
  assert [sizer.next(step) for step in (0, 10, 20, 25)] == [10, 10, 5, 5]


def test_epoch_interval_in_steps():
  assert Interval(2, 'epochs').in_steps(steps_per_epoch=31) == 62
  assert Interval(2, 'epochs').is_due(62, 31) and not Interval(2, 'epochs').is_due(31, 31)


def test_epoch_interval_without_known_epoch_size_says_what_to_do():
  with pytest.raises(ValueError, match='Trainer.steps_per_epoch'):
    Interval(1, 'epochs').in_steps(None)


@pytest.mark.parametrize('steps, epochs, message', [
    (10, 2, 'give Trainer.train_steps or Trainer.train_epochs, not both'),
    (None, None, 'give one of Trainer.train_steps or Trainer.train_epochs'),
    (0, None, 'Trainer.train_steps: an interval is a positive whole number'),
    (-3, None, 'Trainer.train_steps: an interval is a positive whole number'),
    (None, 2.5, 'Trainer.train_epochs: an interval is a positive whole number'),
])
def test_bad_intervals_are_refused_naming_the_binding(steps, epochs, message):
  with pytest.raises(ValueError, match=message):
    Interval.from_either(('Trainer.train_steps', steps), ('Trainer.train_epochs', epochs))


def test_optional_interval_may_be_absent():
  assert Interval.from_either(('a', None), ('b', None), required=False) is None
