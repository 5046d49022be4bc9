"""The gin-trainer command: trains from gin files and bindings; then evaluates, exports or predicts.

Examples (`python main.py` in a checkout is the same command):
  gin-trainer --gin_file=regression.gin --gin_param='adam.learning_rate=3e-4'
  gin-trainer evaluate --model_dir=runs/regression --split=val --split=test
  gin-trainer export --model_dir=runs/regression
  gin-trainer predict --model_dir=runs/regression --inputs=x.npy --outputs=y.npy

The commands after training are in after_training.py.

Exit codes: 0 done (or --help); 2 a mistake in the command or the
configuration (an unknown flag, a --gin_file or --gin_param gin cannot use,
a required binding not given, a value out of range); 1 another error (data,
checkpoints, a NaN loss); 130 or 143 stopped by SIGINT or SIGTERM (137: killed
by the stop watchdog when TensorFlow held the run past STOP_GRACE_SECONDS).
Errors are one `error: ...` line on stderr; with --verbosity=1 (or more) also
the traceback.
"""

import os
import signal
import sys
from types import FrameType
from typing import List, NoReturn, Optional

SIGINT_EXIT = 128 + signal.SIGINT  # The shell's convention for "ended by a signal".
# How long a run may take to stop by itself after SIGINT or SIGTERM: finish its
# loop and save. Past it, the process ends anyway (run/stop_signals.py).
STOP_GRACE_SECONDS = 10.0


def _exit_on_sigint(signal_number: int, frame: Optional[FrameType]) -> NoReturn:
  """Ctrl-C outside the training loop (imports, start-up, the end): nothing to save."""
  del signal_number, frame
  print('stopped by SIGINT outside the training loop; nothing was being saved. '
        'Rerun the same command to continue.', file=sys.stderr, flush=True)
  sys.stdout.flush()
  # Not sys.exit: during the interpreter's shutdown (atexit handlers), SystemExit
  # would print a traceback instead of ending the process.
  os._exit(SIGINT_EXIT)


# Before the slow imports (TensorFlow takes seconds), so Ctrl-C then is no traceback.
# The Trainer's own handler takes over while it trains (run/stop_signals.py).
signal.signal(signal.SIGINT, _exit_on_sigint)

# pylint: disable=wrong-import-position
from absl import app
from absl import flags
from absl import logging

from gin_trainer.run import console, xla_cache

xla_cache.enable()  # Before TensorFlow reads its flags.
console.start_tensorflow_quietly()
console.show_the_framework_lines()

from gin_trainer import models  # pylint: disable=unused-import  (registers the models with gin)
from gin_trainer.config import gin_files
from gin_trainer import after_training, errors
from gin_trainer import experiment
from gin_trainer.run import stop_signals, user_errors
from gin_trainer.run.command_line import CommandLine

stop_signals.stop_within(STOP_GRACE_SECONDS)

FLAGS = flags.FLAGS
HELP_FLAGS = ('help', 'helpshort', 'helpfull', 'helpxml', '?')
COMMANDS = ('train', *after_training.COMMANDS)
flags.DEFINE_multi_string(
    'gin_file', [],
    'A .gin file to apply; repeat the flag for several, applied in order. A bare '
    'name such as regression.gin is also looked for in gin_configs/.')
flags.DEFINE_multi_string(
    'gin_param', [],
    "A gin binding such as 'Trainer.train_steps=500'; repeatable. Applied after "
    'all --gin_file flags, in order, so the last one wins.')
flags.DEFINE_string(
    'trial_name', None,
    "The run's name in TensorBoard's HParams table; by default its model_dir's name. "
    'gin-trainer-sweep gives each run the grid values the runs differ in.')
flags.DEFINE_bool(
    'strict_bindings', False,
    'Refuse (exit 2) bindings of configurables the run never calls, such as adam.* '
    'with Trainer.optimizer=@sgd, instead of warning about them.')


def _parse_flags(argv: List[str]) -> List[str]:
  """absl's flag parsing, with a mistake as one line and exit code 2 (a usage error)."""
  try:
    remaining = FLAGS(argv)
  except flags.Error as error:
    user_errors.fail(f'{error}; see --helpfull', 2)
  except SystemExit as done:  # absl exits with 1 after printing the help it was asked for.
    sys.exit(0 if _asks_for_help(argv) else done.code)
  if len(remaining) > 2 or remaining[1:] and remaining[1] not in COMMANDS:
    user_errors.fail(f'unexpected arguments: {" ".join(remaining[1:])}; the one argument is a '
                     f'command ({", ".join(COMMANDS)}; train by default), and every setting is a '
                     'flag (for training, a --gin_file or a --gin_param)', 2)
  return remaining


def _asks_for_help(argv: List[str]) -> bool:
  return any(arg.lstrip('-').split('=')[0] in HELP_FLAGS for arg in argv[1:]
             if arg.startswith('-'))


def main(argv: List[str]) -> None:
  command = argv[1] if len(argv) > 1 else 'train'  # Checked by _parse_flags.
  if command != 'train':
    after_training.run_command(command, FLAGS.gin_param)
    return
  if not FLAGS.gin_file and not FLAGS.gin_param:
    user_errors.fail('nothing to run: give a --gin_file, e.g. gin-trainer '
                     '--gin_file=regression.gin (see --help)', 2)
  with user_errors.exit_on_user_errors():
    gin_files.parse(FLAGS.gin_file, FLAGS.gin_param)
    try:
      experiment.run_experiment(
          command_line=CommandLine.of_this_process(FLAGS.gin_file, FLAGS.gin_param),
          strict_bindings=FLAGS.strict_bindings, trial_name=FLAGS.trial_name)
    except errors.Interrupted as stop:
      logging.warning('%s', errors.user_message(stop))
      sys.exit(128 + stop.signal_number)
    except KeyboardInterrupt:  # A second Ctrl-C: stop_signals.py stops at once.
      print('stopped at once by a second SIGINT. Rerun the same command to resume from the last '
            'checkpoint.', file=sys.stderr, flush=True)
      sys.stdout.flush()
      # At once, as asked: TensorFlow's teardown can outlast the watchdog's one
      # second after a second signal. Checkpoints on disk are whole; points since
      # the last one are written again by the rerun.
      os._exit(SIGINT_EXIT)  # pylint: disable=protected-access


def run() -> None:
  """The `gin-trainer` command (and `python main.py` in a checkout)."""
  # absl's --help shows the docstring and key flags of the program run (main.py or the
  # console script); this module's, and those of the commands after training, are those.
  sys.modules['__main__'].__doc__ = __doc__
  flags.adopt_module_key_flags(after_training)
  for flag in FLAGS.get_key_flags_for_module(__name__):
    FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  try:
    app.run(main, flags_parser=_parse_flags)
  except SystemExit as done:
    if done.code not in (None, 0):
      raise
  # Done, with everything saved and flushed: the interpreter's teardown of
  # TensorFlow (its objects, its threads) would only keep the user waiting.
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(0)  # pylint: disable=protected-access


if __name__ == '__main__':
  run()
