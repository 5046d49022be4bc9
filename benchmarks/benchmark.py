r"""Speed of gin-trainer against Keras fit, the tutorial's loop and the floor.

From the project directory:

    .venv/bin/python -m benchmarks.benchmark --output=/tmp/benchmark.md
    .venv/bin/python -m benchmarks.benchmark --smoke --nomemory   # checks it runs

One process times every contender: each repeat runs every contender of
every workload once, the contenders' order rotated by one per repeat, so
that the machine's drift hits all of them alike, and the two sides of each
target's ratio back to back, --rounds times (`schedule.py`); ratios are
taken within a repeat, then their median over repeats. Steady-state speed
excludes start-up and tracing (see README.md for how, per contender).
Then, unless --nomemory, each contender runs once more in a child process
of its own (this script with --memory_child) to read its peak memory. The
Markdown tables go to stdout (and --output); progress goes to stderr.
"""

from __future__ import annotations

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # Before TensorFlow is imported.

# pylint: disable=wrong-import-position
from concurrent import futures
import subprocess
import sys
import time
from typing import Dict, List, Sequence, Tuple

import tensorflow as tf
from absl import app
from absl import flags

from benchmarks import contenders as contenders_lib
from benchmarks import markdown
from benchmarks import report
from benchmarks import schedule
from benchmarks import workloads as wl
from benchmarks.contenders import Contender
from benchmarks.workloads import Workload

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A few epochs, timed between the first epoch's end and the last's; gin-trainer
# trains as many more as its window needs (`contenders.gin_trainer`).
SMOKE_EPOCHS = 2
MEMORY_MARK = 'PEAK_RSS_MIB'
MEMORY_CHILDREN = 2  # Child processes at a time.

FLAGS = flags.FLAGS
flags.DEFINE_integer('repeats', 5, 'Times every contender is timed (at least 5 for real figures).')
flags.DEFINE_integer('rounds', 3, 'Times a group of contenders that a target compares is timed '
                     'back to back in each repeat (their figure: the median).')
flags.DEFINE_list('workloads', list(wl.WORKLOADS), 'Workloads to run, of: ' +
                  ', '.join(wl.WORKLOADS))
flags.DEFINE_list('contenders', [c.key for c in contenders_lib.all_contenders()],
                  'Contenders to run (default: all).')
flags.DEFINE_float('scale', 1.0, "Multiplies every workload's timed epochs (" + ', '.join(
    f'{w.name}: {w.epochs}' for w in wl.WORKLOADS.values()) + ').')
flags.DEFINE_bool('smoke', False, f'Check that the benchmark runs: 1 repeat, {SMOKE_EPOCHS} '
                  'timed epochs (gin-trainer: as many as its window needs); the figures mean '
                  'nothing.')
flags.DEFINE_bool('memory', True, "Also measure each contender's peak RSS in a child process.")
flags.DEFINE_string('output', None, 'Also write the Markdown to this file.')
flags.DEFINE_multi_string('gin_param', [], 'A gin binding added to every gin-trainer run '
                          "(and its data path), e.g. 'Trainer.steps_per_loop=100'.")
flags.DEFINE_bool('memory_child', False, 'Internal: run the one contender of --contenders on '
                  'the one workload of --workloads once and print its peak RSS.')

def log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def timed_epochs(workload: Workload) -> int:
  if FLAGS.smoke:
    return SMOKE_EPOCHS
  return max(1, round(workload.epochs * FLAGS.scale))


def selected() -> Tuple[List[Workload], List[Contender]]:
  """The workloads and contenders the flags ask for, in table order."""
  unknown = set(FLAGS.workloads) - set(wl.WORKLOADS)
  everyone = contenders_lib.all_contenders(FLAGS.gin_param)
  unknown |= set(FLAGS.contenders) - {c.key for c in everyone}
  if unknown:
    raise app.UsageError(f'unknown workloads or contenders: {", ".join(sorted(unknown))}')
  return ([wl.WORKLOADS[name] for name in FLAGS.workloads],
          [c for c in everyone if c.key in FLAGS.contenders])


def _status_mib(field: str) -> float:
  """A memory field of /proc/self/status (Linux), e.g. 'VmRSS', in MiB."""
  with open('/proc/self/status') as status:
    kib = next(line.split()[1] for line in status if line.startswith(f'{field}:'))
  return int(kib) / 1024


def run_memory_child(workload: Workload, contender: Contender) -> None:
  """Runs the contender once and prints its resident memory: before, and at its peak.

  Linux only. The peak (VmHWM) is reset once the imports and the data are
  in, so it is the peak while the contender builds and trains; `ru_maxrss`
  could not be reset, and a child started by fork and exec inherits its
  parent's there.
  """
  wl.load(workload)
  with open('/proc/self/clear_refs', 'w') as clear_refs:
    clear_refs.write('5')  # Resets VmHWM to the current VmRSS.
  start = _status_mib('VmRSS')
  contender.measure(workload, timed_epochs(workload))
  print(f'{MEMORY_MARK} {start:.1f} {_status_mib("VmHWM"):.1f}', flush=True)


def child_peak(workload: Workload, contender: Contender) -> Tuple[float, float]:
  """(before, peak) RSS in MiB of `contender` run once in a child process."""
  args = [sys.executable, '-m', 'benchmarks.benchmark', '--memory_child',
          f'--workloads={workload.name}', f'--contenders={contender.key}',
          f'--scale={FLAGS.scale}', f'--smoke={FLAGS.smoke}',
          *[f'--gin_param={binding}' for binding in FLAGS.gin_param]]
  result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
  marks = [line.split() for line in result.stdout.splitlines() if line.startswith(MEMORY_MARK)]
  if result.returncode != 0 or not marks:
    raise RuntimeError(f'memory child {workload.name}/{contender.key} failed:\n'
                       f'{result.stderr[-3000:]}')
  return float(marks[-1][1]), float(marks[-1][2])


def measure_memory(workloads: Sequence[Workload],
                   contenders: Sequence[Contender]) -> Dict[str, Dict[str, float]]:
  """Peak RSS per workload and contender; key '' holds the median RSS before training.

  The children run MEMORY_CHILDREN at a time: timing is over, and each
  child's peak is its own.
  """
  runs = [(w, c) for w in workloads for c in contenders if c.applies_to(w)]
  with futures.ThreadPoolExecutor(MEMORY_CHILDREN) as pool:
    peaks = list(pool.map(lambda run: child_peak(*run), runs))
  memory: Dict[str, Dict[str, float]] = {w.name: {} for w in workloads}
  starts: Dict[str, List[float]] = {w.name: [] for w in workloads}
  for (workload, contender), (start, peak) in zip(runs, peaks):
    memory[workload.name][contender.key] = peak
    starts[workload.name].append(start)
    log(f'memory {workload.name} {contender.key}: {peak:,.0f} MiB')
  for name, values in starts.items():
    if values:
      memory[name][''] = markdown.median(values)
  return memory


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  tf.get_logger().setLevel('ERROR')  # Keras and gin-trainer each build many tf.functions.
  workloads, contenders = selected()
  if FLAGS.memory_child:
    run_memory_child(workloads[0], contenders[0])
    return
  start, code = time.perf_counter(), report.code_version()
  repeats, rounds = (1, 1) if FLAGS.smoke else (FLAGS.repeats, FLAGS.rounds)
  epochs = {w.name: timed_epochs(w) for w in workloads}
  rates = schedule.time_contenders(workloads, contenders, repeats, rounds, epochs, log)
  memory = measure_memory(workloads, contenders) if FLAGS.memory else {}
  command = ' '.join(['python -m benchmarks.benchmark', *sys.argv[1:]])
  document = report.document(
      workloads, contenders, rates, memory, epochs, command, code, repeats, rounds,
      time.perf_counter() - start)
  markdown.publish(document, FLAGS.output)


if __name__ == '__main__':
  app.run(main)
