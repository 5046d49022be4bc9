"""gin-trainer: a gin-configured custom training loop with TensorBoard summaries."""

from trainer import keras_configurables  # Registers Keras optimizers, losses, ... with gin.
from trainer.command_line import CommandLine
from trainer.data import input_pipeline
from trainer.experiment import run_experiment
from trainer.intervals import Interval
from trainer.summary_manager import SummaryManager
from trainer.trainer import Trainer

__all__ = ['CommandLine', 'Interval', 'SummaryManager', 'Trainer', 'input_pipeline',
           'keras_configurables', 'run_experiment']
