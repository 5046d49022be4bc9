"""gin-trainer: a gin-configured custom training loop with TensorBoard summaries.

`Trainer` (trainer.py) owns a run's settings, collaborators and extension
points; `TrainingRun` (training_run.py) is its host loop. They draw on five sub-packages, none of which imports the Trainer:
`config` (gin files and bindings), `data` (the data contract and its
readers), `loop` (the compiled on-device loop), `summaries` (points,
event files, console lines) and `run` (checkpoints, lock, stop signals),
plus `distribute` (strategies). `experiment.run_experiment` is what
main.py runs; `sweep` runs main.py over a grid.
"""

from trainer.config import keras_configurables  # Registers Keras optimizers, losses, ... with gin.
from trainer.config.keras_configurables import keras_configurable
from trainer.data.pipeline import input_pipeline
from trainer.distribute import strategies  # Registers the strategies with gin.
from trainer.experiment import run_experiment
from trainer.intervals import Interval
from trainer.run.checkpoints import Checkpoints
from trainer.run.command_line import CommandLine
from trainer.summaries.manager import SummaryManager
from trainer.trainer import Trainer

__all__ = ['Checkpoints', 'CommandLine', 'Interval', 'SummaryManager', 'Trainer',
           'input_pipeline', 'keras_configurable', 'keras_configurables', 'run_experiment',
           'strategies']
