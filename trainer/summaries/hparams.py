"""A run's hyper-parameters and final metrics, for TensorBoard's HParams dashboard.

A finished run writes, once, to an event file directly in its model_dir
(the trial's folder, above train/ and val/):

- its hyper-parameters (`hp.hparams`), with its trial name (by default the
  model_dir's name) as ID: TensorBoard opened on a sweep's directory shows
  one row per run;
- the table's columns (the `Experiment` summary `hp.hparams_config` also
  writes): those hyper-parameters, typed but without a domain (a run knows
  only its own value), and as metrics the scalars of `model_dir/val`, as
  `val/<tag>`. TensorBoard looks a metric up below each trial (group `val`
  is the run `<trial>/val`, tag the scalar's tag) and shows its last point.

Without the columns TensorBoard would take every scalar below a trial as a
metric (throughput, learning rate, train loss) and show only the first
five. It reads one columns summary per directory it is opened on (the first
it finds), so runs compared together should give the same keys, as a
sweep's runs do.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import gin
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata
from tensorboard.plugins.hparams import summary as hparams_summary

from gin_trainer.summaries import event_files

HParamValue = Union[bool, int, float, str]
# Where a run goes is not a hyper-parameter; as the one value that differs in
# every row, it would also push a real one out of the columns shown first.
MODEL_DIR_KEY = 'Trainer.model_dir'
VAL_RUN = 'val'  # The Trainer's validation summaries: model_dir/val.


def collect(bindings: Mapping[str, Any], keys: Sequence[str]) -> Dict[str, HParamValue]:
  """A run's hyper-parameters: each of `keys` that gin binds, and every binding given.

  Args:
    bindings: The bindings given on the command line (`config.read_bindings`).
    keys: Binding keys to show when bound, given on the command line or not
      (e.g. 'adam.learning_rate'); unbound ones are left out.

  Returns:
    `{key: value}` as TensorBoard takes them (see `as_hparam`), without
    `Trainer.model_dir`.
  """
  values: Dict[str, Any] = {}
  for key in keys:
    try:
      values[key] = gin.query_parameter(key)
    except ValueError:  # Not bound in this run, e.g. the learning rate of another optimizer.
      continue
  values.update(bindings)
  values.pop(MODEL_DIR_KEY, None)
  return {key: as_hparam(value) for key, value in values.items()}


def as_hparam(value: Any) -> HParamValue:
  """A gin value as an HParams value: booleans, numbers and strings as they are,
  anything else (a reference, a tuple, None) as its gin text, e.g. '@cosine_decay()'."""
  if isinstance(value, (bool, int, float, str)):
    return value
  return repr(value)


def written(model_dir: str) -> bool:
  """Whether `model_dir` holds its hyper-parameters, which only a finished run writes."""
  return metadata.SESSION_START_INFO_TAG in event_files.last_steps(model_dir)


def write(model_dir: str, values: Mapping[str, HParamValue],
          trial_name: Optional[str] = None) -> None:
  """Writes the hyper-parameters of the finished run in `model_dir` (once, see `written`).

  Args:
    model_dir: The run's directory.
    values: The run's hyper-parameters (see `collect`).
    trial_name: Its name in the HParams table; by default, the directory's name.
  """
  val_tags = sorted(event_files.read_scalars(os.path.join(model_dir, VAL_RUN)))
  columns = hparams_summary.experiment_pb(
      hparam_infos=[api_pb2.HParamInfo(name=key, type=_data_type(value))
                    for key, value in values.items()],
      metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(group=VAL_RUN, tag=tag),
                                       display_name=f'{VAL_RUN}/{tag}') for tag in val_tags])
  writer = tf.summary.create_file_writer(model_dir)
  with writer.as_default():
    tf.summary.experimental.write_raw_pb(columns.SerializeToString(), step=0)
    hp.hparams(dict(values),
               trial_id=trial_name or os.path.basename(os.path.normpath(model_dir)))
  writer.close()


def _data_type(value: HParamValue) -> int:
  """The column type TensorBoard gives a value (numeric columns can be log-scaled, ...)."""
  if isinstance(value, bool):
    return api_pb2.DATA_TYPE_BOOL
  return api_pb2.DATA_TYPE_STRING if isinstance(value, str) else api_pb2.DATA_TYPE_FLOAT64
