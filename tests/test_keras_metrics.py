"""Keras `Metric` objects in Trainer.metrics: the logged values against the same ones by hand."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.binary_labels import binary_labels
from tests.conftest import run_main, train_regression
from tests.test_distribute import MIRRORED
from gin_trainer.summaries.event_files import read_scalars

METRICS = ("Trainer.metrics = {'auc': @AUC, 'precision': @Precision(), 'recall': @Recall, "
           "'mae': @mean_absolute_error}")
BINARY = ['Trainer.data = @binary_labels', METRICS, 'AUC.from_logits = True',
          'AUC.num_thresholds = 2000', 'SummaryManager.every_n_epochs = None',
          'SummaryManager.every_n_steps = 16']


def by_hand(scores, labels):
  """AUC (from ranks, exact), and precision and recall at Keras's threshold of 0.5."""
  scores, labels = scores.ravel(), labels.ravel().astype(bool)
  ranks = np.argsort(np.argsort(scores)) + 1
  positives, negatives = labels.sum(), (~labels).sum()
  auc = (ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives)
  predicted = scores > 0.5
  true_positives = np.sum(predicted & labels)
  return {'auc': auc, 'precision': true_positives / predicted.sum(),
          'recall': true_positives / positives}


def assert_logged(logged, expected):
  assert logged['auc'] == pytest.approx(expected['auc'], abs=2e-3)  # Keras: 2000 thresholds.
  assert logged['precision'] == pytest.approx(expected['precision'], rel=1e-6)
  assert logged['recall'] == pytest.approx(expected['recall'], rel=1e-6)


def point(log_dir, step):
  """Every scalar of `log_dir` at `step`."""
  return {tag: value for tag, points in read_scalars(log_dir).items()
          for at, value in points if at == step}


def test_val_metrics_are_those_of_the_whole_split(tmp_path):
  run = train_regression(tmp_path, *BINARY, 'Trainer.train_epochs = 3')
  inputs, labels = binary_labels('val')
  scores = run.model(inputs).numpy()
  assert_logged(point(tmp_path / 'val', 3 * 32), by_hand(scores, labels))
  # Each evaluation started afresh: the first differs from the last.
  assert point(tmp_path / 'val', 32)['auc'] != point(tmp_path / 'val', 96)['auc']


def test_train_metrics_are_those_of_each_interval(tmp_path):
  # With no learning the model does not change, and unshuffled batches come
  # in order: the interval of steps 1-16 saw the first 512 examples, 17-32 the rest.
  run = train_regression(tmp_path, *BINARY, 'adam.learning_rate = 0.0', 'Trainer.shuffle = False',
                         'Trainer.train_epochs = 1')
  inputs, labels = binary_labels('train')
  scores = run.model(inputs).numpy()
  for step, examples in ((16, slice(0, 512)), (32, slice(512, 1024))):
    assert_logged(point(tmp_path / 'train', step), by_hand(scores[examples], labels[examples]))


def test_a_resume_mid_interval_logs_what_an_uninterrupted_run_does(tmp_path):
  bindings = [*BINARY, 'Trainer.train_epochs = None', 'Trainer.train_steps = 40',
              'Checkpoints.every_n_steps = 8', 'Checkpoints.max_to_keep = 10']
  train_regression(tmp_path / 'whole', *bindings)
  # The same run, as if it had stopped right after its checkpoint at step 24,
  # mid-interval (17-32): the metrics' state of steps 17-24 comes from it.
  shutil.copytree(tmp_path / 'whole', tmp_path / 'resumed')
  checkpoints = tmp_path / 'resumed' / 'checkpoints'
  for path in checkpoints.glob('ckpt-[34]*'):
    path.unlink()
  kept = [str(checkpoints / f'ckpt-{step}') for step in (8, 16, 24)]
  tf.compat.v1.train.update_checkpoint_state(  # Listed without times, TF would drop them.
      str(checkpoints), kept[-1], all_model_checkpoint_paths=kept,
      all_model_checkpoint_timestamps=[time.time()] * len(kept))
  for split in ('train', 'val'):
    shutil.rmtree(tmp_path / 'resumed' / split)
  train_regression(tmp_path / 'resumed', *bindings)
  assert [step for step, _ in read_scalars(tmp_path / 'resumed' / 'train')['auc']] == [32, 40]
  for step in (32, 40):
    whole, resumed = point(tmp_path / 'whole' / 'train', step), point(
        tmp_path / 'resumed' / 'train', step)
    for tag in ('auc', 'precision', 'recall', 'loss'):
      assert resumed[tag] == whole[tag], (step, tag)


def test_two_replicas_log_what_one_device_does(tmp_path):
  # main.py under mirrored_strategy on two logical CPUs, which must be set up before
  # TensorFlow runs an op: the metrics are bound as classes, which the Trainer builds.
  config = tmp_path / 'binary.gin'
  bindings = [binding.replace('@Precision()', '@Precision') for binding in BINARY]
  config.write_text('import tests.binary_labels\n' + '\n'.join(bindings) + '\n')
  two = run_main(['--gin_file=regression.gin', f'--gin_file={config}',
                  f"--gin_param=Trainer.model_dir='{tmp_path / 'two'}'",
                  '--gin_param=Trainer.train_epochs=2', *MIRRORED])
  assert two.returncode == 0, two.stderr[-3000:]
  train_regression(tmp_path / 'one', *BINARY, 'Trainer.train_epochs = 2')
  for split in ('train', 'val'):
    for tag in ('auc', 'precision', 'recall'):
      one, two = (read_scalars(tmp_path / run / split)[tag] for run in ('one', 'two'))
      assert [step for step, _ in two] == [step for step, _ in one]
      np.testing.assert_allclose([v for _, v in two], [v for _, v in one], rtol=1e-5,
                                 err_msg=f'{split}/{tag}')
