"""Checks of the values bound to the Trainer, before it does any work."""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from gin_trainer.errors import ConfigError


def built(factory: Any, kind: type, binding: str, example: str) -> Any:
  """Calls a class or factory bound in gin and checks what it returns.

  Args:
    factory: The bound value (e.g. `@RegressionModel`).
    kind: The type it must build.
    binding: The binding's name, for messages (`Trainer.model`).
    example: A correct binding, for messages (`@RegressionModel`).

  Raises:
    ConfigError: An instance was bound (with parentheses), or the factory
      built something else.
  """
  if isinstance(factory, kind) or not callable(factory):
    raise ConfigError(f'{binding} must be a class or factory that the Trainer calls, not an '
                    f'instance: bind {example} without parentheses')
  built = factory()
  if not isinstance(built, kind):
    raise ConfigError(f'{binding} built a {type(built).__name__}, not a {kind.__name__}')
  return built


def writable_model_dir(model_dir: str) -> str:
  """Creates `model_dir` if needed and checks that files can be written in it.

  Returns:
    Its absolute path (a URL such as gs://... as it is), which every
    message of the run names.

  Raises:
    ConfigError: It cannot be created or written; the message says why.
  """
  # One name per process: the workers of a cluster probe the same directory at once.
  probe = os.path.join(model_dir, f'.write_test.{os.getpid()}')
  try:
    tf.io.gfile.makedirs(model_dir)
    with tf.io.gfile.GFile(probe, 'w') as f:
      f.write('')
    tf.io.gfile.remove(probe)
  except (tf.errors.OpError, OSError) as error:
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    raise ConfigError(f'Trainer.model_dir {model_dir!r} cannot be created or written ({reason}); '
                      'bind a writable directory') from None
  return model_dir if '://' in model_dir else os.path.abspath(model_dir)


def split_metrics(metrics: Mapping[str, Any]
                  ) -> Tuple[Dict[str, Any], Dict[str, Callable[[], keras.metrics.Metric]]]:
  """`Trainer.metrics` as per-example functions, and factories of Keras `Metric` objects.

  A Keras metric may be bound as its class (`@AUC`; built by the Trainer,
  under its strategy) or as an object (`@AUC()`; copied).

  Raises:
    ConfigError: A value is neither a function nor a Keras metric.
  """
  per_example, keras_metrics = {}, {}
  for name, metric in metrics.items():
    if isinstance(metric, type) and issubclass(metric, keras.metrics.Metric):
      keras_metrics[name] = metric
    elif isinstance(metric, keras.metrics.Metric):
      keras_metrics[name] = functools.partial(_copy_of, metric)
    elif isinstance(metric, type) or not callable(metric):
      raise ConfigError(
          f'Trainer.metrics[{name!r}] is {metric!r}: bind a per-example function '
          '(e.g. @mean_absolute_error) or a Keras metric (e.g. @AUC)')
    else:
      per_example[name] = metric
  return per_example, keras_metrics


def _copy_of(metric: keras.metrics.Metric) -> keras.metrics.Metric:
  """A new metric configured as `metric`, with a state of its own."""
  return type(metric).from_config(metric.get_config())


def positive(owner: str, **values: Optional[int]) -> None:
  """Checks that each given `<owner>.<name>=value` is a whole number >= 1 (or None).

  Raises:
    ConfigError: One is not; the message names it.
  """
  for name, value in values.items():
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
      raise ConfigError(f'{owner}.{name} must be a positive whole number, not {value!r}')


def positive_seconds(owner: str, **values: Optional[float]) -> None:
  """Checks that each given `<owner>.<name>=value` is a number of seconds > 0 (or None).

  Raises:
    ConfigError: One is not; the message names it.
  """
  for name, value in values.items():
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not value > 0):
      raise ConfigError(f'{owner}.{name} must be a number of seconds > 0, not {value!r}')


def step_range(binding: str, steps: Optional[Sequence[int]]) -> Optional[Tuple[int, int]]:
  """`steps` as `(first, last)` global steps, 1 <= first <= last (or None).

  Raises:
    ConfigError: It is not such a pair; the message names `binding`.
  """
  if steps is None:
    return None
  whole = lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= 1
  if (not isinstance(steps, (tuple, list)) or len(steps) != 2 or not all(map(whole, steps))
      or steps[0] > steps[1]):
    raise ConfigError(f'{binding} must be (first, last): two steps with 1 <= first <= last, '
                      f'e.g. (100, 110); not {steps!r}')
  return int(steps[0]), int(steps[1])
