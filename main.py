"""Trains a model from gin files and bindings.

Example:
  python main.py --gin_file=regression.gin --gin_param='adam.learning_rate=3e-4'
"""

import sys

from absl import app
from absl import flags
from absl import logging

import models  # pylint: disable=unused-import  (registers the models with gin)
from trainer import config
from trainer import errors
from trainer import experiment
from trainer.command_line import CommandLine

FLAGS = flags.FLAGS
flags.DEFINE_multi_string(
    'gin_file', [],
    'A .gin file to apply; repeat the flag for several, applied in order. A bare '
    'name such as regression.gin is also looked for in gin_configs/.')
flags.DEFINE_multi_string(
    'gin_param', [],
    "A gin binding such as 'Trainer.train_steps=500'; repeatable. Applied after "
    'all --gin_file flags, in order, so the last one wins.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    config.parse(FLAGS.gin_file, FLAGS.gin_param)
  except config.BadBinding as error:
    print(f'error: {error}', file=sys.stderr)
    sys.exit(2)  # A usage error (the shell's convention).
  try:
    experiment.run_experiment(
        command_line=CommandLine.of_this_process(FLAGS.gin_file, FLAGS.gin_param))
  except errors.Interrupted as stop:
    logging.warning('%s', errors.user_message(stop))
    sys.exit(128 + stop.signal_number)  # The shell's convention for "ended by a signal".
  except errors.TrainerError as error:
    print(f'error: {errors.user_message(error)}', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
