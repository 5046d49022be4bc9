"""The end-to-end benchmark's workloads: contenders, run sizes and the command of each run.

No TensorFlow here (see `child_process`): this only says what to run.
Every run is a process a user would start; `peer_run.py` holds the peers'
scripts, `images.py` and `images.gin` the TFRecord workload.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIN_TRAINER = 'gin_trainer'  # Every run with an empty XLA cache: a first run on a machine.
GIN_TRAINER_WARM = 'gin_trainer_warm'  # The cache primed: a rerun in a new model_dir, a sweep.
TRAINERS = (GIN_TRAINER, GIN_TRAINER_WARM)
TUTORIAL = 'tutorial'
FITS = ('fit', 'fit_xla', 'fit_tuned', 'fit_tuned_xla')
LABELS = {
    GIN_TRAINER: 'gin-trainer, XLA cache empty',
    GIN_TRAINER_WARM: 'gin-trainer, XLA cache primed',
    TUTORIAL: "the tutorial's loop",
    'fit': 'Keras fit + TensorBoard',
    'fit_xla': 'Keras fit + TensorBoard, XLA',
    'fit_tuned': 'Keras fit + TensorBoard, one epoch per execution',
    'fit_tuned_xla': 'Keras fit + TensorBoard, one epoch per execution, XLA',
}


@dataclasses.dataclass(frozen=True)
class Sizes:
  """The epochs of a workload's runs, per contender and repeat.

  Without L (--smoke) each contender runs once, S epochs: no slope.

  Attributes:
    short: S, also the reference size: its wall is the table's e2e wall (a
      shipped config's runs of S epochs are exactly the shipped run).
    long: L, for the peers: long enough for a slope, short enough that the
      slowest fit's runs stay bearable.
    trainer_long: L for gin-trainer: 10 x S in the full mode, so that its
      long run is also the memory check (a run's peak must stay flat over
      10 times the steps), and more where it trains far faster than the
      peers (the slope needs seconds between its two runs).
  """

  short: int
  long: Optional[int] = None
  trainer_long: Optional[int] = None

  def long_for(self, contender: str) -> Optional[int]:
    return self.trainer_long if contender in TRAINERS else self.long


@dataclasses.dataclass(frozen=True)
class Workload:
  """One end-to-end setting.

  Attributes:
    name: The name given to --workloads.
    title: The table's heading.
    steps_per_epoch: Training steps per epoch (every contender's).
    gin_args: gin-trainer's flags besides `Trainer.model_dir` and the epochs.
    gin_epochs: `Trainer.train_epochs` in its .gin file: runs of that many
      epochs leave it unbound (a shipped config runs exactly as shipped).
    contenders: In table order; gin-trainer first.
    quick_contenders: Those of --quick.
    sizes: Per mode (full, quick, smoke).
    images: Reads the TFRecord shards the benchmark writes first.
  """

  name: str
  title: str
  steps_per_epoch: int
  gin_args: Tuple[str, ...]
  gin_epochs: int
  contenders: Tuple[str, ...]
  quick_contenders: Tuple[str, ...]
  sizes: Dict[str, Sizes]
  images: bool = False


_ALL = (GIN_TRAINER, TUTORIAL, *FITS)
# The fastest fits in benchmark.py (one step per execution never wins there).
_TUNED = (GIN_TRAINER, TUTORIAL, 'fit_tuned', 'fit_tuned_xla')
# The XLA cache matters where gin-trainer compiles with XLA (vae.gin; not regression.gin).
_BEST = (GIN_TRAINER, GIN_TRAINER_WARM, TUTORIAL, 'fit_tuned', 'fit_tuned_xla')
_QUICK = (GIN_TRAINER, TUTORIAL, 'fit_tuned')

WORKLOADS = {w.name: w for w in (
    Workload('regression_tfdata', "regression through tf.data: the tutorial's model and data, "
             'val and scalars every epoch', 31,
             ('--gin_file=regression.gin', '--gin_param=Trainer.data_on_device=False'), 50,
             _ALL, _QUICK, {'full': Sizes(50, 250, 500), 'quick': Sizes(10, 50, 100),
                            'smoke': Sizes(1)}),
    Workload('images_tfrecord', 'images from TFRecord shards: a conv net, batch 128, val and '
             'scalars every epoch', 78, ('--gin_file=benchmarks/images.gin',), 2, _TUNED, _QUICK,
             {'full': Sizes(2, 6, 20), 'quick': Sizes(1, 3, 5), 'smoke': Sizes(1)},
             images=True),
    Workload('regression_shipped', 'regression.gin as shipped (50 epochs, data on the device) '
             'against peers from numpy arrays', 31, ('--gin_file=regression.gin',), 50, _TUNED,
             _QUICK, {'full': Sizes(50, 250, 2000), 'quick': Sizes(50, 100, 500),
                      'smoke': Sizes(1)}),
    Workload('vae_shipped', 'vae.gin as shipped (30 epochs of 31 steps, batch 128) against peers '
             'from numpy arrays', 31, ('--gin_file=vae.gin',), 30, _BEST, _QUICK,
             {'full': Sizes(30, 90, 300), 'quick': Sizes(30, 40, 45), 'smoke': Sizes(1)}),
)}


def command(workload: Workload, contender: str, epochs: int, model_dir: str,
            images_dir: Optional[str]) -> List[str]:
  """The command of one run, from the project directory, as a user would type it.

  Args:
    workload: The workload.
    contender: Its key.
    epochs: Epochs to train.
    model_dir: A fresh directory for the run's files.
    images_dir: The TFRecord shards' directory (workloads that read them).

  Returns:
    The program and its arguments.
  """
  if contender in TRAINERS:
    # The console script next to this interpreter: the project's venv.
    args = [os.path.join(os.path.dirname(sys.executable), 'gin-trainer'), *workload.gin_args,
            f'--gin_param=Trainer.model_dir={model_dir!r}']
    if epochs != workload.gin_epochs:
      args.append(f'--gin_param=Trainer.train_epochs={epochs}')
    if workload.images:
      args.append(f'--gin_param=tfrecord_images.directory={images_dir!r}')
    return args
  args = [sys.executable, '-m', 'benchmarks.peer_run', f'--workload={workload.name}',
          f'--contender={contender}', f'--epochs={epochs}', f'--model_dir={model_dir}']
  return args + ([f'--data_dir={images_dir}'] if workload.images else [])


def write_images_command(directory: str) -> List[str]:
  """The command that writes the TFRecord shards into `directory`."""
  return [sys.executable, '-m', 'benchmarks.images', directory]
