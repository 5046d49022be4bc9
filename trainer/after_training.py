"""main.py's commands after training: evaluate a checkpoint, export it, predict with it.

  python main.py evaluate --model_dir=runs/regression --split=val --split=test
  python main.py export --model_dir=runs/regression
  python main.py predict --model_dir=runs/regression --inputs=x.npy --outputs=predictions.npy

Each restores the latest checkpoint of `model_dir` (or --checkpoint) into
the run's own config (`operative_config.gin`; --gin_param adds bindings),
on one device. It only reads the run's files, so it may run while training
goes on: evaluations go to `model_dir/eval_<split>/` at the checkpoint's
step, exports to `model_dir/export/step_<step>/`. The same in Python:
`trainer.restored_run.restore(model_dir)`.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from absl import flags

from gin_trainer.restored_run import restore, save_outputs
from gin_trainer.run import user_errors
from gin_trainer.summaries import progress

COMMANDS = ('evaluate', 'export', 'predict')

FLAGS = flags.FLAGS
flags.DEFINE_string('model_dir', None, 'The directory of the run (its Trainer.model_dir).')
flags.DEFINE_string('checkpoint', None,
                    "A checkpoint's name (e.g. ckpt-500) or path, or 'best' (the best "
                    'evaluation\'s, with BestCheckpoint.monitor); default: the latest.')
flags.DEFINE_bool('ema_weights', True,
                  'With an optimizer keeping moving averages (use_ema), use the averaged weights.')
flags.DEFINE_multi_string('split', ['val'], 'evaluate: a split of the data builder; '
                          'repeatable. predict: the split whose inputs to predict, '
                          'without --inputs.')
flags.DEFINE_string('export_dir', None, 'export: where to write; default model_dir/export/step_N.')
flags.DEFINE_string('inputs', None, 'predict: a .npy file, or a .npz file\'s array as '
                    'FILE.npz:NAME (default: its only or first array).')
flags.DEFINE_string('outputs', None, 'predict: the .npy (one output) or .npz file to write.')
flags.DEFINE_integer('batch_size', None, 'predict: examples per batch; default the run\'s '
                     'eval batch size.', lower_bound=1)


def _inputs(spec: str) -> np.ndarray:
  """The array that --inputs names."""
  path, _, name = spec.rpartition(':') if '.npz:' in spec else (spec, '', '')
  if not os.path.exists(path):
    user_errors.fail(f'--inputs: no file {path}', user_errors.USAGE_ERROR)
  loaded = np.load(path)
  if not isinstance(loaded, np.lib.npyio.NpzFile):
    return loaded
  if name and name not in loaded.files:
    user_errors.fail(f'--inputs: {path} has no array {name!r}; it has {loaded.files}',
                     user_errors.USAGE_ERROR)
  return loaded[name or loaded.files[0]]


def run_command(command: str, gin_params: Sequence[str]) -> None:
  """Runs one of `COMMANDS` with the flags given; a mistake ends the process (`user_errors`).

  Args:
    command: 'evaluate', 'export' or 'predict'.
    gin_params: Bindings applied after the run's config (main.py's --gin_param).
  """
  if not FLAGS.model_dir:
    user_errors.fail('give --model_dir, the directory of a trained run', user_errors.USAGE_ERROR)
  if command == 'predict' and not FLAGS.outputs:
    user_errors.fail('predict needs --outputs, and --inputs (.npy or .npz) or one --split',
                     user_errors.USAGE_ERROR)
  with user_errors.exit_on_user_errors():
    run = restore(FLAGS.model_dir, FLAGS.checkpoint, gin_params, FLAGS.ema_weights)
    name = os.path.basename(run.checkpoint)
    if command == 'evaluate':
      for split in FLAGS.split:
        print(f'{name} (step {run.step}) on {split}: '
              f'{progress.scalars_text(run.evaluate(split))}', flush=True)
    elif command == 'export':
      for kind, path in run.export(FLAGS.export_dir).items():
        print(f'{name} (step {run.step}) exported as {kind}: {path}', flush=True)
    else:
      source = FLAGS.inputs or f'the {FLAGS.split[-1]!r} split'
      inputs = _inputs(FLAGS.inputs) if FLAGS.inputs else run.split_inputs(FLAGS.split[-1])
      save_outputs(FLAGS.outputs, run.predict(inputs, FLAGS.batch_size))
      print(f'{name} (step {run.step}): predictions of {source} written to {FLAGS.outputs}',
            flush=True)

