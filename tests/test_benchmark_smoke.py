"""The benchmark script runs end to end at a tiny size, so it cannot rot.

Speed is never asserted here (it lives in benchmarks/); only that every
contender of every workload gets a row with a measured figure.
"""

import re
import subprocess
import sys
from typing import Dict, List

import pytest

from benchmarks import e2e_workloads
from benchmarks.contenders import all_contenders
from benchmarks.workloads import WORKLOADS
from tests.conftest import ROOT

MEDIAN, PEAK_RSS = 3, -1  # Columns of a row: contender, what, steps/call, median, ...
WALL, E2E_PEAK_RSS = 1, -2  # Of an end-to-end row: contender, e2e wall, ..., peak RSS, growth.


def run_benchmark(*args: str) -> subprocess.CompletedProcess:
  """`python -m benchmarks.benchmark --smoke ARGS` from the project directory."""
  result = subprocess.run([sys.executable, '-m', 'benchmarks.benchmark', '--smoke', *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def rows(markdown: str, title: str) -> Dict[str, List[str]]:
  """The cells of each contender's row in the first table under heading `title`, by key."""
  section = markdown.split(f'### {title}\n', 1)[1]
  first_table = section[section.index('\n|'):].split('\n\n', 1)[0]
  table = {}
  for line in first_table.splitlines():
    key = re.match(r'\| `(\w+)`', line)
    if key:
      table[key.group(1)] = [cell.strip() for cell in line.strip('|').split('|')]
  return table


def test_every_contender_of_each_kind_of_workload_has_a_measured_row(tmp_path):
  # `b_regression` is `a`'s model and data with `b_vae`'s logging: the two cover its code.
  output = tmp_path / 'benchmark.md'
  result = run_benchmark('--nomemory', '--workloads=a,b_vae', f'--output={output}')
  assert output.read_text().strip() == result.stdout.strip()
  for workload in (WORKLOADS['a'], WORKLOADS['b_vae']):
    table = rows(result.stdout, workload.title)
    assert set(table) == {c.key for c in all_contenders() if c.applies_to(workload)}
    for key, cells in table.items():
      assert re.fullmatch(r'[\d,]+', cells[MEDIAN]), (workload.name, key, cells)
  assert '### Targets' in result.stdout


def test_peak_memory_comes_from_a_child_process_per_contender():
  # The two cheapest contenders: the child process is the same for every one.
  result = run_benchmark('--workloads=a', '--contenders=floor,tutorial')
  table = rows(result.stdout, WORKLOADS['a'].title)
  assert set(table) == {'floor', 'tutorial'}
  for key, cells in table.items():
    assert float(cells[PEAK_RSS].replace(',', '')) > 0
    assert re.search(rf'^memory a {key}: [\d,]+ MiB$', result.stderr, re.MULTILINE), key
  assert 'after its imports and data' in result.stdout


# A Trainer subclass (vae.gin's VAETrainer), one of each configuration: A and B are already
# two Trainers built in one process.
@pytest.mark.parametrize('workload, trainers', [('b_vae', 1)])
def test_paired_comparison_prints_both_call_times_and_their_ratio(workload, trainers):
  result = subprocess.run(
      [sys.executable, '-m', 'benchmarks.paired', f'--workload={workload}',
       '--a=Trainer.jit_compile=False', '--b=Trainer.jit_compile=False', '--b=Trainer.shuffle=False',
       '--blocks=1', '--calls=2', f'--trainers={trainers}'],
      cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert re.fullmatch(rf'{workload}: A [\d,]+ us, B [\d,]+ us a call; B / A = \d+\.\d{{3}} '
                      r'\(blocks: \d+\.\d{3} to \d+\.\d{3}\)\n', result.stdout), result.stdout


def test_end_to_end_times_whole_processes_with_their_own_peak_memory(tmp_path):
  # A tf.data workload and the TFRecord one (its shards written by the benchmark): gin-trainer's
  # command and the peers' script, on arrays and on files.
  output = tmp_path / 'end_to_end.md'
  contenders = ('gin_trainer', 'tutorial', 'fit_tuned')
  result = subprocess.run(
      [sys.executable, '-m', 'benchmarks.end_to_end', '--smoke',
       '--workloads=regression_tfdata,images_tfrecord', f'--contenders={",".join(contenders)}',
       f'--output={output}'],
      cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert output.read_text().strip() == result.stdout.strip()
  for name in ('regression_tfdata', 'images_tfrecord'):
    workload = e2e_workloads.WORKLOADS[name]
    table = rows(result.stdout, f'{name}: {workload.title}')
    assert set(table) == set(contenders), (name, table)
    for key, cells in table.items():
      assert float(cells[WALL]) > 0, (name, key, cells)
      # A process that imported TensorFlow: hundreds of MiB, not the driver's few dozen.
      assert float(cells[E2E_PEAK_RSS].replace(',', '')) > 300, (name, key, cells)
  assert '### Targets' in result.stdout
