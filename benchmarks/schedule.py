"""The order in which the benchmark times its contenders, and how often.

This machine's speed drifts by 2x within minutes, so every repeat times
every contender, in an order that rotates, and the contenders a target
compares (`Contender.timed_next_to`) are timed back to back, several
rounds in a row.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Sequence

from benchmarks import markdown
from benchmarks.contenders import Contender
from benchmarks.workloads import Workload

AllRates = Dict[str, Dict[str, List[float]]]  # Workload -> contender -> steps/s per repeat.


def repeat_groups(contenders: Sequence[Contender], repeat: int) -> List[List[Contender]]:
  """The contenders of repeat `repeat` (from 0), in groups timed back to back, in order.

  A contender joins the group of the one it names in `timed_next_to`, so
  that the ratios the targets compare are taken seconds apart, not across
  a repeat's drift. The groups rotate by one per repeat.
  """
  keys = {c.key for c in contenders}
  groups = [[c] for c in contenders if c.timed_next_to not in keys]
  for contender in contenders:
    if contender.timed_next_to in keys:
      next(group for group in groups if group[0].key == contender.timed_next_to).append(contender)
  shift = repeat % len(groups)
  return groups[shift:] + groups[:shift]


def time_contenders(workloads: Sequence[Workload], contenders: Sequence[Contender],
                    repeats: int, rounds: int, epochs: Mapping[str, int],
                    log: Callable[[str], None]) -> AllRates:
  """Every contender of every workload once per repeat, in `repeat_groups`.

  A group of several contenders is timed `rounds` times in a row, in
  alternate orders; each one's figure for the repeat is its median over them.

  Args:
    workloads: The workloads, in order.
    contenders: The contenders, in table order.
    repeats: Times every contender is timed.
    rounds: Times a group of several contenders is timed in a row per repeat.
    epochs: Per workload name, the epochs each measurement trains.
    log: Gets one line per measurement.

  Returns:
    Per workload, each contender's figure of every repeat.
  """
  rates: AllRates = {w.name: {c.key: [] for c in contenders if c.applies_to(w)} for w in workloads}
  for repeat in range(repeats):
    for workload in workloads:
      plan = [c for c in contenders if c.applies_to(workload)]
      for group in repeat_groups(plan, repeat):
        group_rates: Dict[str, List[float]] = {c.key: [] for c in group}
        for round_ in range(rounds if len(group) > 1 else 1):
          for contender in group if (repeat + round_) % 2 == 0 else group[::-1]:
            rate = contender.measure(workload, epochs[workload.name])
            group_rates[contender.key].append(rate)
            log(f'repeat {repeat + 1}/{repeats} {workload.name} {contender.key}: {rate:,.1f}/s')
        for key, values in group_rates.items():
          median = markdown.median(values)
          rates[workload.name][key].append(float('nan') if median is None else median)
  return rates
