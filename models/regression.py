"""The tutorial's regression model: Dense(10) -> Dense(1)."""

from __future__ import annotations

from typing import Optional

import keras

from gin_trainer.config.keras_configurables import keras_configurable


@keras_configurable
class RegressionModel(keras.Model):
  """A two-layer perceptron predicting one real value per example.

  Args:
    hidden_units: Width of the hidden layer.
    activation: Activation of the hidden layer (a Keras name such as
      'relu'); None keeps it linear, as in the tutorial.
  """

  def __init__(self, hidden_units: int = 10, activation: Optional[str] = None, **kwargs):
    super().__init__(**kwargs)
    self.hidden = keras.layers.Dense(hidden_units, activation=activation)
    self.out = keras.layers.Dense(1)

  def call(self, inputs, training=False):
    return self.out(self.hidden(inputs))
