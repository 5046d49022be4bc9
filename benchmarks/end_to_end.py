r"""End to end: whole training processes, start to exit, gin-trainer beside its peers.

From the project directory:

    .venv/bin/python -m benchmarks.end_to_end --output=/tmp/end_to_end.md   # full
    .venv/bin/python -m benchmarks.end_to_end --quick    # a contributor's check
    .venv/bin/python -m benchmarks.end_to_end --smoke    # does every run work?

Every measurement is a child process, as a user starts it (`gin-trainer
...`, or a peer's script, `peer_run.py`), timed from its start to its exit
and read for its peak RSS (`os.wait4`). This process never imports
TensorFlow, so that a child's peak is its own (`child_process`). Each
contender runs S and L epochs: the slope between the two is its steady
speed, the intercept its fixed cost (start-up, tracing, compiling, the
end). Repeats rotate the contenders' order; figures are medians over
repeats, ratios taken within each repeat first. Markdown goes to stdout
(and --output), one progress line per run to stderr.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from absl import app
from absl import flags

from benchmarks import child_process
from benchmarks import e2e_report
from benchmarks import markdown
from benchmarks import e2e_workloads as e2e
from benchmarks.child_process import Measurement
from benchmarks.e2e_workloads import Sizes, Workload
from gin_trainer.run import xla_cache  # The cache's variable; this module imports no TensorFlow.

REPEATS = {'full': 3, 'quick': 1, 'smoke': 1}

FLAGS = flags.FLAGS
flags.DEFINE_bool('quick', False, 'A check in minutes: 1 repeat, smaller sizes, gin-trainer '
                  '(XLA cache empty), the tutorial loop and the tuned fit only.')
flags.DEFINE_bool('smoke', False, 'Does every run work: one run of 1 epoch per contender, no '
                  'slope; the figures mean nothing.')
flags.DEFINE_string('output', None, 'Also write the Markdown to this file.')
flags.DEFINE_integer('repeats', None, 'Times every run is done (full: 3; quick, smoke: 1).',
                     lower_bound=1)
flags.DEFINE_list('workloads', list(e2e.WORKLOADS), 'Of: ' + ', '.join(e2e.WORKLOADS) + '.')
flags.DEFINE_list('contenders', list(e2e.LABELS), 'Of: ' + ', '.join(e2e.LABELS) + ' (default: '
                  "all of each workload's; with --quick, its three).")


def log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def mode() -> str:
  return 'smoke' if FLAGS.smoke else 'quick' if FLAGS.quick else 'full'


def plan() -> Tuple[List[Workload], Dict[str, Tuple[str, ...]]]:
  """The workloads asked for, and the contenders of each, in table order."""
  unknown = (set(FLAGS.workloads) - set(e2e.WORKLOADS)) | (set(FLAGS.contenders) - set(e2e.LABELS))
  if unknown:
    raise app.UsageError(f'unknown workloads or contenders: {", ".join(sorted(unknown))}')
  workloads = [e2e.WORKLOADS[name] for name in FLAGS.workloads]
  chosen = {}
  for workload in workloads:
    keys = (workload.contenders if FLAGS['contenders'].present or mode() != 'quick'
            else workload.quick_contenders)
    chosen[workload.name] = tuple(key for key in keys if key in FLAGS.contenders)
  return workloads, chosen


def header() -> Tuple[str, str]:
  """The machine line and the code's version, from a child (they need TensorFlow)."""
  script = 'from benchmarks import report; print(report.machine()); print(report.code_version())'
  result = subprocess.run([sys.executable, '-c', script], cwd=e2e.ROOT, capture_output=True,
                          text=True, check=False,
                          env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  if result.returncode != 0:
    raise child_process.ChildFailed(f'the machine line failed:\n{result.stderr[-3000:]}')
  machine, code = result.stdout.strip().splitlines()[-2:]
  return machine, code


def run(workload: Workload, key: str, epochs: int, images_dir: Optional[str],
        warm_caches: Mapping[str, str]) -> Measurement:
  """One measured run, its files in a scratch directory removed after the timing.

  gin-trainer keeps XLA's compiled programs in a cache (by default in the
  user's home, which this leaves alone): `GIN_TRAINER_WARM` uses its
  workload's primed one, `GIN_TRAINER` an empty one of its own.
  """
  with tempfile.TemporaryDirectory(prefix='end_to_end_') as scratch:
    env = None
    if key in e2e.TRAINERS:
      cache = (warm_caches[workload.name] if key == e2e.GIN_TRAINER_WARM
               else os.path.join(scratch, 'xla_cache'))
      env = {**os.environ, xla_cache.CACHE_ENV: cache}
    return child_process.measure(
        e2e.command(workload, key, epochs, os.path.join(scratch, 'run'), images_dir), e2e.ROOT,
        os.path.join(scratch, 'output.log'), env)


def write_images(directory: str) -> None:
  """Writes the TFRecord shards, in a child (it needs TensorFlow)."""
  with tempfile.TemporaryDirectory(prefix='end_to_end_') as scratch:
    written = child_process.measure(e2e.write_images_command(directory), e2e.ROOT,
                                    os.path.join(scratch, 'output.log'))
  log(f'TFRecord shards written in {written.seconds:.1f} s')


def measure_all(workloads: Sequence[Workload], contenders: Mapping[str, Tuple[str, ...]],
                sizes: Mapping[str, Sizes], repeats: int, images_dir: Optional[str],
                cache_root: str) -> Dict[str, Dict[str, List[e2e_report.Figures]]]:
  """Every contender of every workload at S and L epochs, once per repeat.

  First, one untimed run of S epochs primes the XLA cache of each workload
  with `GIN_TRAINER_WARM`. In each repeat a contender's two runs are back
  to back (S first in even repeats, L first in odd ones), and the
  contenders' order rotates by one.

  Returns:
    Per workload, each contender's figures of every repeat, in table order.
  """
  warm_caches = {w.name: os.path.join(cache_root, w.name) for w in workloads}
  for workload in workloads:
    if e2e.GIN_TRAINER_WARM in contenders[workload.name]:
      primed = run(workload, e2e.GIN_TRAINER_WARM, sizes[workload.name].short, images_dir,
                   warm_caches)
      log(f'{workload.name}: XLA cache primed in {primed.seconds:.2f} s (untimed)')
  results = {w.name: {key: [] for key in contenders[w.name]} for w in workloads}
  for repeat in range(repeats):
    for workload in workloads:
      keys, size, steps = contenders[workload.name], sizes[workload.name], workload.steps_per_epoch
      shift = repeat % len(keys) if keys else 0
      for key in keys[shift:] + keys[:shift]:
        epochs = {'S': size.short, 'L': size.long_for(key)}
        runs = {}
        for which in ('S', 'L') if repeat % 2 == 0 else ('L', 'S'):
          if epochs[which] is None:
            continue
          runs[which] = run(workload, key, epochs[which], images_dir, warm_caches)
          log(f'repeat {repeat + 1}/{repeats} {workload.name} {key} {which} = {epochs[which]} '
              f'epochs: {runs[which].seconds:.2f} s, {runs[which].peak_rss_mib:,.0f} MiB')
        long_steps = epochs['L'] * steps if epochs['L'] else None
        results[workload.name][key].append(e2e_report.figures(
            epochs['S'] * steps, long_steps, runs['S'], runs.get('L')))
  return results


def how(repeats: int, seconds: float) -> str:
  """The paragraph on how this run measured."""
  # A child's ru_maxrss starts from this process's (see child_process).
  floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  text = (f'{mode()} mode, {repeats} repeat(s); the run took {seconds / 60:.1f} min. Each run '
          'is a fresh process, timed from its start to its exit, with its peak RSS (wait4; '
          f'this process peaked at {floor:.0f} MiB, a floor under every figure). ')
  if mode() == 'smoke':
    return text + 'One run of S epochs per contender: no slope, and the figures mean nothing.'
  return text + ('Steady steps/s = (L − S) steps / (wall_L − wall_S); fixed cost = wall_S − S '
                 'steps / (steady steps/s). In a repeat each contender runs S and L back to '
                 "back, the contenders' order rotated by one per repeat; figures are medians "
                 'over repeats, ratios taken within a repeat first.')


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  start = time.perf_counter()
  workloads, contenders = plan()
  sizes = {w.name: w.sizes[mode()] for w in workloads}
  repeats = FLAGS.repeats or REPEATS[mode()]
  try:
    machine, code = header()
    with tempfile.TemporaryDirectory(prefix='end_to_end_') as shared:
      images_dir = os.path.join(shared, 'images')
      if any(w.images for w in workloads):
        write_images(images_dir)
      results = measure_all(workloads, contenders, sizes, repeats, images_dir,
                            os.path.join(shared, 'xla_cache'))
  except child_process.ChildFailed as failed:
    log(f'error: a measured process failed, so the run stops. {failed}')
    sys.exit(1)
  if 'tensorflow' in sys.modules:  # Its peak would be every child's ru_maxrss floor.
    raise RuntimeError('the benchmark process imported TensorFlow: peak RSS figures are void')
  command = ' '.join(['python -m benchmarks.end_to_end', *sys.argv[1:]])
  document = e2e_report.document(workloads, sizes, results,
                                 {'machine': machine, 'code': code, 'command': command,
                                  'how': how(repeats, time.perf_counter() - start)})
  markdown.publish(document, FLAGS.output)


if __name__ == '__main__':
  app.run(main)
