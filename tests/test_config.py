"""Finding .gin files and applying them with bindings, in order."""

import os
import sys

import gin
import pytest

from gin_trainer.config import gin_files, gin_names, keras_configurables


def test_bare_name_resolves_in_gin_configs_from_any_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert gin_files.resolve('regression.gin') == os.path.join(gin_files.GIN_CONFIGS_DIR, 'regression.gin')
  (tmp_path / 'configs').mkdir()
  (tmp_path / 'configs' / 'mine.gin').write_text('Trainer.batch_size = 8\n')
  assert gin_files.resolve('configs/mine.gin') == str(tmp_path / 'configs' / 'mine.gin')


def test_a_file_in_the_working_directory_wins(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  (tmp_path / 'regression.gin').write_text('Trainer.batch_size = 8\n')
  assert gin_files.resolve('regression.gin') == str(tmp_path / 'regression.gin')


def test_missing_file_names_every_place_looked(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(gin_files.BadGinFile) as error:
    gin_files.resolve('nope.gin')
  for place in gin_files.candidates('nope.gin'):
    assert place in str(error.value)
  assert gin_files.GIN_CONFIGS_DIR in str(error.value)


def test_include_and_order_files_then_bindings(tmp_path):
  first = tmp_path / 'first.gin'
  first.write_text("include 'base.gin'\nTrainer.batch_size = 8\nTrainer.seed = 1\n")
  second = tmp_path / 'second.gin'
  second.write_text('Trainer.batch_size = 16\n')
  gin_files.parse([str(first), str(second)], ['Trainer.seed = 3', 'Trainer.seed = 4'])
  assert gin.query_parameter('Trainer.optimizer').selector == 'adam'  # From base.gin.
  assert gin.query_parameter('Trainer.batch_size') == 16  # The later file wins.
  assert gin.query_parameter('Trainer.seed') == 4  # Bindings come last; the last one wins.


def test_an_include_is_found_next_to_the_including_file_first(tmp_path, monkeypatch):
  experiment = tmp_path / 'experiment'
  experiment.mkdir()
  # A user's base.gin where they run, and another next to their file.
  (tmp_path / 'base.gin').write_text('Trainer.batch_size = 7\n')
  (experiment / 'base.gin').write_text('Trainer.seed = 5\n')
  (experiment / 'mine.gin').write_text("include 'regression.gin'\ninclude 'base.gin'\n")
  monkeypatch.chdir(tmp_path)
  gin_files.parse(['experiment/mine.gin'], [])
  assert gin.query_parameter('Trainer.seed') == 5  # experiment/base.gin, next to mine.gin.
  # regression.gin's own `include 'base.gin'` is the shipped base.gin, not the user's.
  assert gin.query_parameter('Trainer.batch_size') == 32
  assert os.getcwd() == str(tmp_path)  # As before parsing.


def test_a_gin_import_finds_a_module_next_to_the_file(tmp_path, monkeypatch):
  (tmp_path / 'my_schedule_for_gin_test.py').write_text(
      'import gin\n\n@gin.configurable\ndef my_schedule(rate=1.0):\n  return rate\n')
  (tmp_path / 'mine.gin').write_text("import my_schedule_for_gin_test\nmy_schedule.rate = 0.5\n")
  monkeypatch.chdir(os.path.dirname(tmp_path))  # Not the file's folder.
  monkeypatch.setattr('sys.path', list(sys.path))
  gin_files.parse([str(tmp_path / 'mine.gin')], [])
  assert gin.query_parameter('my_schedule.rate') == 0.5


def test_a_missing_include_names_the_file_and_where_it_was_looked_for(tmp_path):
  (tmp_path / 'mine.gin').write_text("Trainer.seed = 1\ninclude 'nowhere.gin'\n")
  with pytest.raises(gin_files.BadGinFile, match=r"mine\.gin, line 2: include 'nowhere\.gin': no "
                     r'such file next to the including file, in the working directory or in '
                     r'gin_configs/'):
    gin_files.parse([str(tmp_path / 'mine.gin')], [])


def test_keras_optimizers_and_schedules_have_short_names():
  gin.parse_config(['adam.learning_rate = @cosine_decay()',
                    'cosine_decay.initial_learning_rate = 0.5',
                    'cosine_decay.decay_steps = 10'])
  optimizer = gin.get_configurable('adam')()
  assert float(optimizer.learning_rate) == pytest.approx(0.5)
  assert keras_configurables  # The module that registered them.


@pytest.mark.parametrize('old, new', sorted(gin_names.RENAMED.items()))
def test_a_renamed_binding_names_its_new_name(old, new):
  with pytest.raises(gin_files.BadBinding) as error:
    gin_files.parse([], [f'{old} = 5'])
  assert f'bind {new} instead' in str(error.value)
  gin.clear_config()
  gin_files.parse([], [f'{new} = 5'])  # The new name is a real binding.


def test_gin_registry_look_ups_still_work():
  """gin has no public registry listing; if an upgrade breaks the private one, this fails."""
  assert {'Trainer', 'gin_trainer.trainer.Trainer', 'Checkpoints'} <= set(gin_names.configurable_names())
  assert {'batch_size', 'model_dir', 'seed'} <= set(gin_names.parameter_names('Trainer'))
  assert 'every_n_steps' in gin_names.parameter_names('Checkpoints')
  assert 'model_dir' not in gin_names.parameter_names('Checkpoints')  # Denylisted.
  assert gin_names.parameter_names('NoSuchThing') == []
