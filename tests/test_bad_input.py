"""Bad input gets one clear line, a non-zero exit, and costs no data."""

from tests.conftest import run_main


def assert_clean_failure(result, *words):
  assert result.returncode == 1, result.stderr[-2000:]
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  error = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
  assert len(error) == 1, result.stderr[-2000:]
  for word in words:
    assert word in error[0], error[0]


def test_a_model_dir_that_cannot_be_created(tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('not a directory')
  result = run_main(['--gin_file=regression.gin',
                     f"--gin_param=Trainer.model_dir='{blocker / 'run'}'"])
  assert_clean_failure(result, 'Trainer.model_dir', str(blocker / 'run'), 'cannot be created',
                       'writable directory')
  assert blocker.read_text() == 'not a directory'


def test_data_that_does_not_fit_the_model_names_the_shapes(tmp_path):
  result = run_main(['--gin_file=vae.gin', f"--gin_param=Trainer.model_dir='{tmp_path}'",
                     '--gin_param=procedural_shapes.image_size=20',
                     '--gin_param=procedural_shapes.num_train=256'])
  assert_clean_failure(result, 'train_step fails on batches of float32(128, 20, 20)',
                       'Trainer.data', 'Trainer.model')
  assert not (tmp_path / 'checkpoints').exists()


def test_a_value_out_of_range_names_the_binding(tmp_path):
  result = run_main(['--gin_file=regression.gin', f"--gin_param=Trainer.model_dir='{tmp_path}'",
                     '--gin_param=Trainer.train_epochs=-3'])
  assert_clean_failure(result, 'Trainer.train_epochs', 'positive whole number', '-3')
