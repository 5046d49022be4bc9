"""Keras optimizers, learning-rate schedules, losses and metrics, named for gin.

After importing this module a .gin file can say, for example:

    Trainer.optimizer = @adam
    adam.learning_rate = @cosine_decay()
    cosine_decay.initial_learning_rate = 1e-3
    cosine_decay.decay_steps = 10000
    Trainer.loss = @mean_squared_error
    Trainer.metrics = {'mae': @mean_absolute_error}

Short lowercase names are used, so sweeps read naturally
(`--gin_param=adam.learning_rate=3e-4`).

`keras_configurable` is `gin.configurable` for a Keras class (a model or a
layer); use it on your own models.
"""

import inspect
from typing import List, Optional, TypeVar

import gin
import keras

KerasClass = TypeVar('KerasClass', bound=type)


def keras_configurable(cls: KerasClass, name: Optional[str] = None) -> KerasClass:
  """Registers a Keras model or layer class with gin, and as Keras-serializable.

  Keras registration (under the class's module name) lets a saved `.keras`
  file of the model load wherever that module is imported. Plain `gin.configurable` hides the class's `__init__` signature behind a
  `*args, **kwargs` wrapper, which Keras inspects (to build `get_config`)
  and fails on with an IndexError; this restores the signature.

  Args:
    cls: The class to register.
    name: The gin name; default: the class name.

  Returns:
    The configurable class.
  """
  signature = inspect.signature(cls.__init__)
  cls = keras.saving.register_keras_serializable(package=cls.__module__)(cls)
  configurable = gin.configurable(name or cls.__name__)(cls)
  configurable.__init__.__signature__ = signature
  return configurable

_OPTIMIZERS = {
    'adam': keras.optimizers.Adam,
    'adamw': keras.optimizers.AdamW,
    'sgd': keras.optimizers.SGD,
    'rmsprop': keras.optimizers.RMSprop,
    'adagrad': keras.optimizers.Adagrad,
    'nadam': keras.optimizers.Nadam,
    'lion': keras.optimizers.Lion,
}
_SCHEDULES = {
    'cosine_decay': keras.optimizers.schedules.CosineDecay,
    'cosine_decay_restarts': keras.optimizers.schedules.CosineDecayRestarts,
    'exponential_decay': keras.optimizers.schedules.ExponentialDecay,
    'inverse_time_decay': keras.optimizers.schedules.InverseTimeDecay,
    'piecewise_constant_decay': keras.optimizers.schedules.PiecewiseConstantDecay,
    'polynomial_decay': keras.optimizers.schedules.PolynomialDecay,
}
# Per-example functions (they reduce only the last axis); the Trainer averages.
_LOSSES_AND_METRICS = {
    'mean_squared_error': keras.losses.mean_squared_error,
    'mean_absolute_error': keras.losses.mean_absolute_error,
    'huber': keras.losses.huber,
    'binary_crossentropy': keras.losses.binary_crossentropy,
    'categorical_crossentropy': keras.losses.categorical_crossentropy,
    'sparse_categorical_crossentropy': keras.losses.sparse_categorical_crossentropy,
    'sparse_categorical_accuracy': keras.metrics.sparse_categorical_accuracy,
    'categorical_accuracy': keras.metrics.categorical_accuracy,
    'binary_accuracy': keras.metrics.binary_accuracy,
}
# Keras metrics with state (bind an instance: `{'auc': @AUC()}`); the Trainer
# keeps their state apart for training and evaluation.
_KERAS_METRICS = {
    'AUC': keras.metrics.AUC,
    'Precision': keras.metrics.Precision,
    'Recall': keras.metrics.Recall,
    'PrecisionAtRecall': keras.metrics.PrecisionAtRecall,
    'F1Score': keras.metrics.F1Score,
    'MeanIoU': keras.metrics.MeanIoU,
    'TopKCategoricalAccuracy': keras.metrics.TopKCategoricalAccuracy,
}



def _named_parameters(cls: type) -> List[str]:
  """The parameters `cls.__init__` names (not `**kwargs`)."""
  parameters = inspect.signature(cls.__init__).parameters.values()
  return [p.name for p in parameters
          if p.name != 'self' and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


for _name, _cls in _OPTIMIZERS.items():
  # Optimizers take **kwargs, so gin would accept any name and Keras refuse it
  # when the run starts; the allowlist makes gin refuse a misspelt one at once.
  gin.external_configurable(_cls, name=_name, module='keras.optimizers',
                            allowlist=_named_parameters(_cls))
for _module, _table in (('keras.optimizers.schedules', _SCHEDULES),
                        ('keras.losses', _LOSSES_AND_METRICS),
                        ('keras.metrics', _KERAS_METRICS)):
  for _name, _fn in _table.items():
    gin.external_configurable(_fn, name=_name, module=_module)
# What `Trainer.precision = 'mixed_float16'` wraps the optimizer in; bindings
# such as `loss_scale_optimizer.initial_scale = 1024.0` reach it.
loss_scale_optimizer = gin.external_configurable(
    keras.optimizers.LossScaleOptimizer, name='loss_scale_optimizer', module='keras.optimizers',
    allowlist=['initial_scale', 'dynamic_growth_steps'])


def unwrapped(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
  """The optimizer a `LossScaleOptimizer` wraps (float16), or `optimizer` itself."""
  if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
    return optimizer.inner_optimizer
  return optimizer


def clipping_binding(optimizer: keras.optimizers.Optimizer) -> str:
  """The binding that clips `optimizer`'s gradients, e.g. 'sgd.global_clipnorm'."""
  optimizer = unwrapped(optimizer)  # Loss scaling clips nothing.
  name = next((name for name, cls in _OPTIMIZERS.items() if type(optimizer) is cls), None)
  return f'{name or type(optimizer).__name__}.global_clipnorm'

