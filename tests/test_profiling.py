"""Where a run's time goes: its waits for input, logged per interval, and a profiler trace."""

import re
import textwrap

from tensorflow.tsl.profiler.protobuf import xplane_pb2

from gin_trainer.summaries import tags
from gin_trainer.summaries.event_files import read_scalars
from tests.conftest import run_main, train_regression

# A tf.data split whose examples take 1 ms each to read: 32 ms a batch, far
# longer than the regression's step.
SLOW_DATA = '''
import time

import gin
import tensorflow as tf

from gin_trainer.models.regression_data import synthetic_regression


def read_slowly(x):
  time.sleep(0.001)
  return x


@gin.configurable
def slow_regression(split):
  x, y = synthetic_regression(split)
  data = tf.data.Dataset.from_tensor_slices((x, y))
  if split == 'train':
    data = data.map(lambda x, y: (tf.ensure_shape(tf.numpy_function(read_slowly, [x], tf.float32),
                                                  x.shape), y))
  return data
'''


def trace_steps(model_dir):
  """The step numbers of the 'train' step events in the run's profiler trace."""
  [path] = (model_dir / 'train' / 'plugins' / 'profile').glob('*/*.xplane.pb')
  space = xplane_pb2.XSpace.FromString(path.read_bytes())
  steps = []
  for plane in space.planes:
    names = {key: meta.name for key, meta in plane.event_metadata.items()}
    stat_names = {key: meta.name for key, meta in plane.stat_metadata.items()}
    for line in plane.lines:
      for event in line.events:
        if names[event.metadata_id] == 'train':
          stats = {stat_names[stat.metadata_id]: stat.int64_value or stat.uint64_value
                   for stat in event.stats}
          steps.append(stats['step_num'])
  return steps


def test_a_slow_input_pipeline_is_said_once_and_a_profile_holds_the_steps_asked(tmp_path):
  (tmp_path / 'slow_input.py').write_text(textwrap.dedent(SLOW_DATA))
  (tmp_path / 'slow.gin').write_text(textwrap.dedent('''
      import slow_input
      include 'regression.gin'
      Trainer.data = @slow_regression
      Trainer.seed = None  # Op determinism would forbid the loop's clock.
      Trainer.train_epochs = 3
      input_pipeline.cache = False
      '''))
  model_dir = tmp_path / 'run'
  result = run_main([f'--gin_file={tmp_path / "slow.gin"}',
                     f"--gin_param=Trainer.model_dir='{model_dir}'",
                     '--gin_param=Trainer.profile_steps=(40, 45)'])
  assert result.returncode == 0, result.stderr[-3000:]

  waiting = read_scalars(model_dir / 'train')[tags.WAITING_FOR_INPUT]
  assert [step for step, _ in waiting] == [1, 2, 3]
  # The loop waited for most of each epoch after the first (whose time holds compiling).
  assert all(0.5 < fraction <= 1.0 for _, fraction in waiting[1:]), waiting
  advice = [line for line in result.stderr.splitlines() if 'input pipeline sets the pace' in line]
  assert len(advice) == 1, result.stderr[-3000:]
  assert re.match(r'\d\d:\d\d:\d\d The input pipeline sets the pace: by step (62|93), steps '
                  r'waited \d+% of their time for the next batch\. See "Input-bound runs"', advice[0])

  # Loops ended at steps 39 and 45, so the trace is one loop call: steps 40 to 45.
  assert trace_steps(model_dir) == [45]
  assert re.search(r'Profile of steps 40-45 written to \S+/train/plugins/profile', result.stderr)


def test_data_on_the_device_logs_no_wait_for_input(tmp_path):
  train_regression(tmp_path, 'Trainer.train_epochs = 2', 'Trainer.seed = None')
  logged = read_scalars(tmp_path / 'train')
  assert tags.STEPS_PER_SECOND in logged and tags.WAITING_FOR_INPUT not in logged
