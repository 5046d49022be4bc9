"""The benchmark times the two sides of each target's ratio back to back, in rounds."""

from typing import List, Optional

from benchmarks import schedule
from benchmarks.contenders import PEER, Contender
from benchmarks.workloads import WORKLOADS


def test_compared_contenders_run_back_to_back_in_alternating_rounds():
  order: List[str] = []

  def contender(key: str, timed_next_to: Optional[str] = None) -> Contender:
    def measure(workload, epochs):
      assert epochs == 3
      order.append(key)
      return float(len(order))  # The rate: the run's position.
    return Contender(key, key, PEER, measure, lambda workload: 1, timed_next_to=timed_next_to)

  plan = [contender('a'), contender('b'), contender('c', timed_next_to='a'), contender('d')]
  lines: List[str] = []
  rates = schedule.time_contenders([WORKLOADS['a']], plan, repeats=2, rounds=2, epochs={'a': 3},
                                   log=lines.append)

  # Groups [a, c], [b], [d] rotate by one per repeat; [a, c] runs twice, order alternating.
  assert order == ['a', 'c', 'c', 'a', 'b', 'd',
                   'b', 'd', 'c', 'a', 'a', 'c']
  # A repeat's figure of a contender timed twice is the median (mean) of its two positions.
  assert rates['a'] == {'a': [2.5, 10.5], 'b': [5.0, 7.0], 'c': [2.5, 10.5], 'd': [6.0, 8.0]}
  assert len(lines) == len(order) and lines[0] == 'repeat 1/2 a a: 1.0/s'
