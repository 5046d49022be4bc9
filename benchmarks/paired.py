r"""A/B of two gin-trainer configurations: their loop calls, timed in turn in one process.

From the project directory:

    .venv/bin/python -m benchmarks.paired --workload=a \
        --a=Trainer.jit_compile=False --b=Trainer.jit_compile=False --b=Trainer.shuffle=False

For changes worth a few percent, which this machine's drift (up to 2x
within minutes) hides between separate runs. Each configuration builds
--trainers Trainers, since one Trainer's calls can run up to 2% faster
or slower than another's of the same configuration (where its compiled
loop and data landed, it seems); each trains a few epochs of the workload
(tracing, compiling). Then all their loop functions are called in turn,
in blocks of calls, each call running the steps of one of the Trainer's
loops in the workload (one epoch and an evaluation in `a`, else the
floor's K). A configuration's time in a block is the mean of its
Trainers' medians. It prints each one's median call time and the median
over blocks of the ratio B / A. To compare two versions of the code, put
the change behind a binding while measuring.

This calls the Trainer's loop (`Trainer.compiled_loop()`), so the host's
work around a loop (points, checkpoints) is not in it; the
benchmark (`benchmarks.benchmark`) times whole runs.
"""

from __future__ import annotations

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # Before TensorFlow is imported.

# pylint: disable=wrong-import-position
import statistics
import tempfile
import time
from typing import Callable, List, Sequence

import gin
from absl import app
from absl import flags

import gin_trainer
from benchmarks import contenders
from benchmarks import workloads as wl
from gin_trainer import experiment

FLAGS = flags.FLAGS
flags.DEFINE_enum('workload', 'a', list(wl.WORKLOADS), 'The workload both configurations train.')
flags.DEFINE_multi_string('a', [], 'A gin binding of configuration A (repeat the flag).')
flags.DEFINE_multi_string('b', [], 'A gin binding of configuration B (repeat the flag).')
flags.DEFINE_integer('blocks', 11, 'Blocks of calls per configuration, taken in turn.')
flags.DEFINE_integer('calls', 100, 'Calls per block.')
flags.DEFINE_integer('trainers', 3, 'Trainers per configuration, timed in turn.')

_WARM_UP_EPOCHS = 3


def loop_call(workload: wl.Workload, bindings: Sequence[str],
              model_dir: str) -> Callable[[], float]:
  """Trains a few epochs, then returns `time_one_call() -> seconds` of the Trainer's loop."""
  contenders.parse_config(workload, model_dir, _WARM_UP_EPOCHS, workload.summary_steps, bindings)
  # The Trainer class main.py would build (e.g. vae.gin's VAETrainer).
  trainer_class = gin.get_bindings(experiment.run_experiment).get('trainer_class', gin_trainer.Trainer)
  run = trainer_class()
  run.train()
  steps = run.steps_per_epoch if workload.evaluate else workload.steps_per_call
  loop = run.compiled_loop()
  step = _WARM_UP_EPOCHS * run.steps_per_epoch

  def time_one_call() -> float:
    nonlocal step
    began = time.perf_counter()
    loop(step, steps, workload.evaluate)  # Returns the results on the host.
    step += steps
    return time.perf_counter() - began
  return time_one_call


def compare(workload: wl.Workload, a: Sequence[str], b: Sequence[str], blocks: int,
            calls: int, trainers: int) -> str:
  """The median call times of A and B and the median ratio B / A, as one line."""
  with tempfile.TemporaryDirectory() as root:
    timers = [[loop_call(workload, bindings, os.path.join(root, f'{name}{i}'))
               for name, bindings in (('a', a), ('b', b))] for i in range(trainers)]
    block_means: List[List[float]] = [[], []]  # Per configuration, per block.
    for _ in range(blocks):
      medians: List[List[float]] = [[], []]
      for pair in timers:  # A and B alternate, Trainer by Trainer.
        for timer, configuration in zip(pair, medians):
          configuration.append(statistics.median(timer() for _ in range(calls)))
      for means, configuration in zip(block_means, medians):
        means.append(statistics.mean(configuration))
  ratios = [b_time / a_time for a_time, b_time in zip(*block_means)]
  a_us, b_us = (statistics.median(times) * 1e6 for times in block_means)
  return (f'{workload.name}: A {a_us:,.0f} us, B {b_us:,.0f} us a call; B / A = '
          f'{statistics.median(ratios):.3f} (blocks: {min(ratios):.3f} to {max(ratios):.3f})')


def main(argv: Sequence[str]) -> None:
  del argv
  print(compare(wl.WORKLOADS[FLAGS.workload], FLAGS.a, FLAGS.b, FLAGS.blocks, FLAGS.calls,
                FLAGS.trainers))


if __name__ == '__main__':
  app.run(main)
