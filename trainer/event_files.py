"""Reading scalars back from a run's event files, as TensorBoard stores them."""

from __future__ import annotations

import collections
import glob
import os
from typing import Dict, List, Tuple

import tensorflow as tf

Points = List[Tuple[int, float]]


def read_scalars(log_dir: str) -> Dict[str, Points]:
  """Every scalar point in the event files directly inside `log_dir`.

  Args:
    log_dir: A run directory such as `model_dir/train`.

  Returns:
    `{tag: [(step, value), ...]}` in the order written.
  """
  scalars: Dict[str, Points] = collections.defaultdict(list)
  for path in sorted(glob.glob(os.path.join(log_dir, 'events.out.tfevents.*'))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == 'scalars':
          scalars[value.tag].append((event.step, float(tf.make_ndarray(value.tensor))))
  return dict(scalars)
