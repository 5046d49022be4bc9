"""The end-to-end benchmark's figures and Markdown: slope and intercept, ratios, targets.

No TensorFlow here (see `child_process`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from benchmarks.child_process import Measurement
from benchmarks.markdown import median, number, times
from benchmarks.e2e_workloads import (FITS, GIN_TRAINER, LABELS, TRAINERS, TUTORIAL, Sizes,
                                      Workload)

# The targets.
FIT_SPEED_TARGETS = {'regression_tfdata': 1.5, 'images_tfrecord': 1.0}  # × the best fit's steps/s.
WALL_TARGETS = ('regression_shipped', 'vae_shipped')  # e2e wall and fixed cost against peers.
FIXED_COST_MARGIN_S = 1.0
RSS_TARGETS = ('regression_tfdata', 'regression_shipped', 'vae_shipped')
RSS_RATIO = 1.15  # gin-trainer's peak RSS over the tutorial loop's, at most.
FLAT_MIB, FLAT_SHARE = 30.0, 0.05  # A long run's peak over the short run's: flat within either.
FLAT_STEPS = 10  # ... over this many times the steps.


@dataclasses.dataclass(frozen=True)
class Figures:
  """One contender's figures in one repeat, from its runs of S and L epochs.

  Attributes:
    wall: Wall seconds of the run of S epochs (the reference size).
    long_wall: Wall seconds of the run of L epochs.
    rate: Steady steps per second, (L - S) steps / (wall_L - wall_S) (NaN
      when the long run was not the slower).
    (The fields from the run of L are NaN when there was none.)
    fixed: The intercept of wall against steps: wall_S - S steps / rate.
    rss: Peak RSS of the run of S epochs, MiB.
    rss_growth: Peak RSS of the run of L epochs minus that of S, MiB.
  """

  wall: float
  long_wall: float
  rate: float
  fixed: float
  rss: float
  rss_growth: float


def figures(short_steps: int, long_steps: Optional[int], short: Measurement,
            long: Optional[Measurement]) -> Figures:
  """A contender's figures from its two runs of one repeat (or its one, without L)."""
  if long is None or long_steps is None:
    return Figures(short.seconds, math.nan, math.nan, math.nan, short.peak_rss_mib, math.nan)
  seconds = long.seconds - short.seconds
  rate = (long_steps - short_steps) / seconds if seconds > 0 else math.nan
  return Figures(short.seconds, long.seconds, rate, short.seconds - short_steps / rate,
                 short.peak_rss_mib, long.peak_rss_mib - short.peak_rss_mib)


Results = Mapping[str, Sequence[Figures]]  # Contender -> its figures of every repeat.


def field_median(results: Results, key: str, field: str) -> Optional[float]:
  """The median over repeats of one of `key`'s `Figures` fields."""
  return median([getattr(f, field) for f in results[key]]) if key in results else None


def paired(results: Results, key: str, reference: Optional[str], field: str,
           combine: Callable[[float, float], float]) -> Optional[float]:
  """The median over repeats of `combine(key's field, reference's)` within each repeat.

  Taken within a repeat first, so the machine's drift between repeats cancels.
  """
  if reference is None or key not in results or reference not in results:
    return None
  return median([combine(getattr(a, field), getattr(b, field))
                 for a, b in zip(results[key], results[reference])])


def ratio(results: Results, key: str, reference: Optional[str], field: str) -> Optional[float]:
  """`paired` of key's field / reference's."""
  return paired(results, key, reference, field, lambda a, b: a / b if b else math.nan)


def best(results: Results, keys: Sequence[str], field: str, highest: bool) -> Optional[str]:
  """Of `keys`, the one with the highest (or lowest) median `field`."""
  medians = {key: field_median(results, key, field) for key in keys}
  medians = {key: value for key, value in medians.items() if value is not None}
  if not medians:
    return None
  return (max if highest else min)(medians, key=medians.get)


def peers(results: Results) -> List[str]:
  """The contenders that are not gin-trainer, in table order."""
  return [key for key in results if key not in TRAINERS]


def best_fit_by_rate(results: Results) -> Optional[str]:
  """The Keras fit setting with the highest median steady steps/s."""
  return best(results, [key for key in results if key in FITS], 'rate', highest=True)


def best_fit_by_wall(results: Results) -> Optional[str]:
  """The Keras fit setting with the lowest median e2e wall."""
  return best(results, [key for key in results if key in FITS], 'wall', highest=False)


def _seconds(value: float) -> str:
  return f'{value:.2f}' if math.isfinite(value) else '—'


def _growth(results: Results, key: str) -> str:
  growth, share = field_median(results, key, 'rss_growth'), growth_share(results, key)
  return '—' if growth is None else f'{growth:+,.0f} ({share:+.1%})'


def growth_share(results: Results, key: str) -> Optional[float]:
  """The median over repeats of the RSS growth S -> L, as a share of the peak at S."""
  return median([f.rss_growth / f.rss for f in results.get(key, ())])


def workload_section(workload: Workload, sizes: Sizes, results: Results) -> str:
  """The Markdown of one workload: its table, notes and every repeat's walls."""
  steps = workload.steps_per_epoch
  exact = "; the .gin file's own" if sizes.short == workload.gin_epochs else ''
  long = (f'L = {sizes.long} epochs for the peers, {sizes.trainer_long} for gin-trainer'
          if sizes.long else 'no run of L, so no slope')
  others = peers(results)
  fastest_peer = best(results, others, 'rate', highest=True)
  lines = [
      f'### {workload.name}: {workload.title}', '',
      f'S = {sizes.short} epoch(s) of {steps} steps ({sizes.short * steps:,} steps{exact}): the '
      f"e2e wall's size; {long}.", '',
      '| contender | e2e wall s (S) | fixed cost s | steady steps/s | × best peer (steps/s) | '
      + ' | '.join(f'wall ÷ `{key}`' for key in others) + ' | peak RSS MiB (S) | RSS growth '
      'S→L MiB |',
      '|---|--:|--:|--:|--:|' + '--:|' * len(others) + '--:|--:|']
  for key in results:
    cells = [f'`{key}`' + (' ★' if key == fastest_peer else ''),
             number(field_median(results, key, 'wall'), 2),
             number(field_median(results, key, 'fixed'), 2),
             number(field_median(results, key, 'rate')),
             times(ratio(results, key, fastest_peer, 'rate'))]
    cells += [times(ratio(results, key, peer, 'wall')) for peer in others]
    cells += [number(field_median(results, key, 'rss')), _growth(results, key)]
    lines.append('| ' + ' | '.join(cells) + ' |')
  notes = ['Contenders: ' + '; '.join(f'`{key}`: {LABELS[key]}' for key in results) + '.',
           f'★ best peer by steady steps/s: `{fastest_peer}`.' if fastest_peer else None,
           _best_fits_note(results)]
  lines += [''] + [f'- {note}' for note in notes if note] + ['']
  return '\n'.join(lines + _per_repeat(results))


def _best_fits_note(results: Results) -> Optional[str]:
  by_rate, by_wall = best_fit_by_rate(results), best_fit_by_wall(results)
  if by_rate is None:
    return None
  return f'Best Keras fit by steady steps/s: `{by_rate}`; by e2e wall: `{by_wall}`.'


def _per_repeat(results: Results) -> List[str]:
  """Every run's wall, folded away: the machine's drift shows there."""
  repeats = max((len(values) for values in results.values()), default=0)
  lines = ['<details><summary>wall s of every run (S / L), by repeat</summary>', '',
           '| contender | ' + ' | '.join(str(r + 1) for r in range(repeats)) + ' |',
           '|---|' + '--:|' * repeats]
  for key, values in results.items():
    lines.append(f'| `{key}` | ' + ' | '.join(f'{f.wall:.2f} / {_seconds(f.long_wall)}'
                                               for f in values) + ' |')
  return lines + ['', '</details>', '']


def targets_table(workloads: Sequence[Workload], sizes: Mapping[str, Sizes],
                  results: Mapping[str, Results]) -> str:
  """The issue's targets, what this run measured, and whether each is met."""
  rows: List[str] = []

  def add(workload: str, target: str, value: Optional[float], text: str,
          met: Callable[[float], bool]) -> None:
    verdict = '—' if value is None else ('yes' if met(value) else 'no')
    rows.append(f'| {workload} | {target} | {text if value is not None else "—"} | {verdict} |')

  for workload in workloads:
    name, found = workload.name, results[workload.name]
    if name in FIT_SPEED_TARGETS:
      goal, fit = FIT_SPEED_TARGETS[name], best_fit_by_rate(found)
      value = ratio(found, GIN_TRAINER, fit, 'rate')
      which = f' (`{fit}`)' if fit else ''
      add(name, f'`{GIN_TRAINER}` steady steps/s ≥ {goal}× the best fit{which}', value,
          times(value), lambda v, goal=goal: v >= goal)
    for trainer in (key for key in TRAINERS if key in found and name in WALL_TARGETS):
      for peer in (key for key in (TUTORIAL, best_fit_by_wall(found)) if key in found):
        value = ratio(found, trainer, peer, 'wall')
        add(name, f'`{trainer}` e2e wall ≤ `{peer}`\'s', value, times(value), lambda v: v <= 1)
      for peer in peers(found):
        value = paired(found, trainer, peer, 'fixed', lambda a, b: a - b)
        add(name, f'`{trainer}` fixed cost ≤ `{peer}`\'s + {FIXED_COST_MARGIN_S:g} s', value,
            f'{value:+.2f} s' if value is not None else '', lambda v: v <= FIXED_COST_MARGIN_S)
    if name in RSS_TARGETS:
      value = ratio(found, GIN_TRAINER, TUTORIAL, 'rss')
      add(name, f"`{GIN_TRAINER}` peak RSS ≤ {RSS_RATIO}× `{TUTORIAL}`'s (S)", value,
          times(value), lambda v: v <= RSS_RATIO)
    growth = field_median(found, GIN_TRAINER, 'rss_growth') if GIN_TRAINER in found else None
    share = growth_share(found, GIN_TRAINER)
    factor = (sizes[name].trainer_long or sizes[name].short) / sizes[name].short
    short_of = '' if factor >= FLAT_STEPS else f' (this run: {factor:g}× only)'
    add(name, f'`{GIN_TRAINER}` memory flat: peak at {FLAT_STEPS}× the steps ≤ '
        f'+{FLAT_SHARE:.0%} or +{FLAT_MIB:g} MiB{short_of}', growth,
        f'{growth:+,.0f} MiB ({share:+.1%})' if growth is not None else '',
        lambda v: v <= FLAT_MIB or (share is not None and share <= FLAT_SHARE))
  return '\n'.join(['| workload | target | measured (median over repeats) | met |',
                    '|---|---|--:|---|', *rows, ''])


def document(workloads: Sequence[Workload], sizes: Mapping[str, Sizes],
             results: Mapping[str, Results], header: Dict[str, str]) -> str:
  """The whole Markdown report of one run.

  Args:
    workloads: The workloads run, in order.
    sizes: Per workload, the sizes run.
    results: Per workload, each contender's figures of every repeat.
    header: 'machine', 'code', 'command' and 'how' lines (the run's).
  """
  parts = [f'Machine: {header["machine"]}.', '', f'Code: {header["code"]}.', '',
           f'Command: `{header["command"]}`', '', header['how'], '']
  for workload in workloads:
    parts.append(workload_section(workload, sizes[workload.name], results[workload.name]))
  parts += ['### Targets', '', targets_table(workloads, sizes, results)]
  return '\n'.join(parts)
