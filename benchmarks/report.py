"""The benchmark's Markdown: one table per workload, the targets, the machine."""

from __future__ import annotations

import os
import platform
import subprocess
from typing import List, Mapping, Optional, Sequence

import keras
import tensorflow as tf

from benchmarks import workloads as wl
from benchmarks.markdown import finite, median, number, times
from benchmarks.contenders import FLOOR, PEER, Contender
from benchmarks.workloads import Workload

Rates = Mapping[str, Sequence[float]]  # Contender key -> steps/s of each repeat, in order.
Memory = Mapping[str, float]  # Contender key -> peak RSS in MiB; '' -> RSS before training.


def ratio(rates: Rates, key: str, reference: Optional[str]) -> Optional[float]:
  """The median over repeats of `key`'s rate over `reference`'s in the same repeat.

  Dividing within a repeat first cancels the machine's drift between
  repeats.
  """
  if reference is None or key not in rates or reference not in rates:
    return None
  return median([a / b for a, b in zip(rates[key], rates[reference]) if b > 0])


def fastest(rates: Rates, contenders: Sequence[Contender], role: str) -> Optional[str]:
  """The key of the contender of `role` with the highest median rate."""
  medians = {c.key: median(rates[c.key]) for c in contenders if c.role == role and c.key in rates}
  medians = {key: value for key, value in medians.items() if value is not None}
  return max(medians, key=medians.get) if medians else None


def workload_table(workload: Workload, contenders: Sequence[Contender], rates: Rates,
                   memory: Memory, epochs: int) -> str:
  """The Markdown section of one workload."""
  peer = fastest(rates, contenders, PEER)
  floors = [c.key for c in contenders if c.role == FLOOR]
  per_epoch = wl.steps_per_epoch(workload)
  lines = [
      f'### {workload.title}', '',
      f'{epochs} epochs of {per_epoch} steps ({epochs * per_epoch} steps) per contender and '
      f'repeat after one untimed epoch (gin-trainer: more where its window needs them, timed '
      f'from its first loop end after a third of its run); batch {workload.batch_size}; floor K = '
      f'{workload.steps_per_call} steps per call.', '',
      '| contender | what | steps/call | steps/s median | min | max | × fastest peer | '
      + ' | '.join(f'× {key}' for key in floors) + ' | peak RSS MiB |',
      '|---|---|--:|--:|--:|--:|--:|' + '--:|' * len(floors) + '--:|']
  for contender in contenders:
    if contender.key not in rates:
      continue
    values = finite(rates[contender.key])
    calls = contender.steps_per_call(workload)
    cells = [f'`{contender.key}`' + (' ★' if contender.key == peer else ''), contender.label,
             'own' if calls is None else str(calls), number(median(values)),
             number(min(values) if values else None), number(max(values) if values else None),
             times(ratio(rates, contender.key, peer))]
    cells += [times(ratio(rates, contender.key, floor)) for floor in floors]
    cells.append(number(memory.get(contender.key)))
    lines.append('| ' + ' | '.join(cells) + ' |')
  lines.append('')
  lines += _notes(workload, rates, memory, peer)
  lines += _per_repeat(contenders, rates)
  return '\n'.join(lines)


def _per_repeat(contenders: Sequence[Contender], rates: Rates) -> List[str]:
  """Every figure, by repeat, folded away: the machine's drift shows there."""
  keys = [c.key for c in contenders if c.key in rates]
  repeats = max((len(rates[key]) for key in keys), default=0)
  lines = ['<details><summary>steps/s of every repeat</summary>', '',
           '| contender | ' + ' | '.join(str(r + 1) for r in range(repeats)) + ' |',
           '|---|' + '--:|' * repeats]
  for key in keys:
    lines.append(f'| `{key}` | ' + ' | '.join(number(value) for value in rates[key]) + ' |')
  return lines + ['', '</details>', '']


def _notes(workload: Workload, rates: Rates, memory: Memory, peer: Optional[str]) -> List[str]:
  """Lines under a table: the fastest peer, the input pipeline, the cost of summaries."""
  notes = []
  if peer is not None:
    notes.append(f'★ fastest peer (highest median): `{peer}`.')
  input_ratio = ratio(rates, 'input', 'gin_trainer')
  if input_ratio is not None:
    notes.append(f"The Trainer's data path alone delivers {input_ratio:.1f}× the batches "
                 'gin-trainer trains per second (near 1× would mean it is input-bound).')
  cost = summary_cost(rates)
  if not workload.evaluate and cost is not None:
    notes.append(f'Train scalars every {workload.summary_steps} steps cost gin-trainer '
                 f'{cost:.1%} of its speed without them (`gin_trainer_nosummaries`).')
  if '' in memory:
    notes.append(f'Peak RSS: the peak of a child process running the contender alone, from '
                 f'{memory[""]:,.0f} MiB after its imports and data (median).')
  return [f'- {note}' for note in notes] + ['']


def summary_cost(rates: Rates) -> Optional[float]:
  """1 - (gin-trainer with summaries / without), from per-repeat ratios."""
  with_summaries = ratio(rates, 'gin_trainer', 'gin_trainer_nosummaries')
  return None if with_summaries is None else 1.0 - with_summaries


def targets_table(workloads: Sequence[Workload], contenders: Sequence[Contender],
                  rates: Mapping[str, Rates]) -> str:
  """The project's speed targets and what this run measured."""
  rows = []

  def add(workload: Workload, target: str, value: Optional[float], met: Optional[bool],
          text: str) -> None:
    verdict = '—' if met is None else ('yes' if met else 'no')
    rows.append(f'| {workload.name} | {target} | {text if value is not None else "—"} | '
                f'{verdict} |')

  for workload in workloads:
    workload_rates = rates[workload.name]
    if workload.peer_target is not None:
      goal = workload.peer_target
      value = ratio(workload_rates, 'gin_trainer', fastest(workload_rates, contenders, PEER))
      add(workload, f'gin-trainer ≥ {goal}× fastest peer', value,
          None if value is None else value >= goal, times(value))
    for key, floor, goal in (('gin_trainer_noxla', 'floor', 0.8),
                             ('gin_trainer', 'floor_xla', 0.7)):
      value = ratio(workload_rates, key, floor)
      add(workload, f'`{key}` ≥ {goal}× `{floor}` (K = {workload.steps_per_call})', value,
          None if value is None else value >= goal, times(value))
    if not workload.evaluate:
      value = summary_cost(workload_rates)
      add(workload, 'scalars every 100 steps cost ≤ 3%', value,
          None if value is None else value <= 0.03, f'{value:.1%}' if value is not None else '')
  return '\n'.join(['| workload | target | measured (median of per-repeat ratios) | met |',
                    '|---|---|--:|---|', *rows, ''])


def machine() -> str:
  """One line: CPU model, cores, the device that trains, TensorFlow, Keras and Python versions."""
  model = 'unknown CPU'
  try:
    with open('/proc/cpuinfo') as cpuinfo:
      names = [line.split(':', 1)[1].strip() for line in cpuinfo if line.startswith('model name')]
    model = names[0] if names else model
  except OSError:
    pass
  gpus = tf.config.list_physical_devices('GPU')
  # TensorFlow places the loops on the first GPU when there is one.
  device = (f"GPU:0, {tf.config.experimental.get_device_details(gpus[0]).get('device_name', '?')}"
            f' (of {len(gpus)} GPUs)' if gpus else 'the CPU (no GPU)')
  return (f'{model}, {os.cpu_count()} cores (nproc); training on {device}; {platform.system()} '
          f'{platform.release()}; TensorFlow {tf.__version__}, Keras {keras.__version__}, '
          f'Python {platform.python_version()}')


def code_version() -> str:
  """The project's git commit, and whether trainer/, models/ or gin_configs/ differ from it."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=root, check=True,
                            capture_output=True, text=True).stdout.strip()
    changed = subprocess.run(['git', 'status', '--porcelain', 'trainer', 'models', 'gin_configs'],
                             cwd=root, check=True, capture_output=True, text=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return 'unknown (no git)'
  return f'commit {commit}' + (' with uncommitted changes to the trainer' if changed else '')


def document(workloads: Sequence[Workload], contenders: Sequence[Contender],
             rates: Mapping[str, Rates], memory: Mapping[str, Memory],
             epochs: Mapping[str, int], command: str, code: str, repeats: int,
             rounds: int, seconds: float) -> str:
  """The whole Markdown report of one run.

  Args:
    workloads: The workloads run, in order.
    contenders: The contenders run, in table order.
    rates: Per workload, each contender's steps/s of every repeat.
    memory: Per workload, each contender's peak RSS (may be empty).
    epochs: Per workload, the timed epochs.
    command: The command that ran.
    code: The code that ran (`code_version()` when the run began).
    repeats: How many repeats ran.
    rounds: How many times a group of contenders a target compares ran in each.
    seconds: How long the run took.
  """
  parts = [f'Machine: {machine()}.', '', f'Code: {code}.', '',
           f'Command: `{command}`', '',
           f'{repeats} repeat(s), contenders alternating within each, those a target compares '
           f'back to back ({rounds} round(s), their median the repeat\'s figure); the run took '
           f'{seconds / 60:.1f} min. Steps/s are steady state; ratios are medians over repeats '
           'of ratios within a repeat.', '']
  for workload in workloads:
    parts.append(workload_table(workload, contenders, rates[workload.name],
                                memory.get(workload.name, {}), epochs[workload.name]))
  parts += ['### Targets', '', targets_table(workloads, contenders, rates)]
  return '\n'.join(parts)
