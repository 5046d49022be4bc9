"""What both benchmarks' reports share: their cells (medians, numbers, ratios) and output.

No TensorFlow here: the end-to-end driver imports it, and must stay small.
"""

from __future__ import annotations

import math
import statistics
from typing import List, Optional, Sequence


def finite(values: Sequence[float]) -> List[float]:
  """The values that are numbers (a failed timing is NaN)."""
  return [value for value in values if math.isfinite(value)]


def median(values: Sequence[float]) -> Optional[float]:
  """The median of the finite values; None when there are none."""
  numbers = finite(values)
  return statistics.median(numbers) if numbers else None


def number(value: Optional[float], digits: int = 0) -> str:
  """`1,234` (or with `digits` decimals); '—' for no value."""
  return '—' if value is None else f'{value:,.{digits}f}'


def times(value: Optional[float]) -> str:
  """A ratio, `1.23×`; '—' for no value."""
  return '—' if value is None else f'{value:.2f}×'


def publish(document: str, output: Optional[str]) -> None:
  """Prints the report's Markdown, and writes it to `output` too (--output), if given."""
  print(document)
  if output:
    with open(output, 'w') as file:
      file.write(document)
