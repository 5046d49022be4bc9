"""Finding .gin files and applying them with bindings, in order."""

import os

import gin
import pytest

import trainer
from trainer import config


def test_bare_name_resolves_in_gin_configs_from_any_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert config.resolve('regression.gin') == os.path.join(config.GIN_CONFIGS_DIR, 'regression.gin')
  assert config.resolve('gin_configs/regression.gin') == os.path.join(
      config.PROJECT_DIR, 'gin_configs', 'regression.gin')


def test_a_file_in_the_working_directory_wins(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  (tmp_path / 'regression.gin').write_text('Trainer.batch_size = 8\n')
  assert config.resolve('regression.gin') == str(tmp_path / 'regression.gin')


def test_missing_file_names_every_place_looked(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(config.BadGinFile) as error:
    config.resolve('nope.gin')
  for place in config.candidates('nope.gin'):
    assert place in str(error.value)
  assert config.GIN_CONFIGS_DIR in str(error.value)


def test_include_and_order_files_then_bindings(tmp_path):
  first = tmp_path / 'first.gin'
  first.write_text("include 'base.gin'\nTrainer.batch_size = 8\nTrainer.seed = 1\n")
  second = tmp_path / 'second.gin'
  second.write_text('Trainer.batch_size = 16\n')
  config.parse([str(first), str(second)], ['Trainer.seed = 3', 'Trainer.seed = 4'])
  assert gin.query_parameter('Trainer.optimizer').selector == 'adam'  # From base.gin.
  assert gin.query_parameter('Trainer.batch_size') == 16  # The later file wins.
  assert gin.query_parameter('Trainer.seed') == 4  # Bindings come last; the last one wins.


def test_keras_optimizers_and_schedules_have_short_names():
  gin.parse_config(['adam.learning_rate = @cosine_decay()',
                    'cosine_decay.initial_learning_rate = 0.5',
                    'cosine_decay.decay_steps = 10'])
  optimizer = gin.get_configurable('adam')()
  assert float(optimizer.learning_rate) == pytest.approx(0.5)
  assert trainer.keras_configurables  # The module that registered them.
