"""The gin config a run used, saved beside its checkpoints and shown in TensorBoard."""

from __future__ import annotations

import os

import gin
import tensorflow as tf

from gin_trainer.summaries.manager import SummaryManager

OPERATIVE_CONFIG = 'operative_config.gin'
TAG = 'operative_config'


def save(model_dir: str, summaries: SummaryManager, step: int) -> None:
  """Saves the config in effect to `model_dir/operative_config.gin`, and as text in train/.

  The text is written once per `model_dir`: a resumed run does not repeat it.

  Args:
    model_dir: The run's directory.
    summaries: The run's `SummaryManager` (its train/ writer).
    step: The step reached (the first loop's end: the config has been used).
  """
  operative = gin.operative_config_str()
  with tf.io.gfile.GFile(os.path.join(model_dir, OPERATIVE_CONFIG), 'w') as f:
    f.write(operative)
  if not summaries.on_disk('train', TAG):
    with summaries.as_default('train', step):
      tf.summary.text(TAG, gin.markdown(operative))
