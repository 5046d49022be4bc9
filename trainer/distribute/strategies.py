"""tf.distribute strategies, named for gin.

One binding picks where a run trains; the .gin file stays the same:

    Trainer.strategy = @mirrored_strategy                # all local GPUs
    Trainer.strategy = @multi_worker_mirrored_strategy   # the cluster in TF_CONFIG

Unbound (None), the run uses TensorFlow's default strategy: one device, with
the on-device data and XLA-compiled loops of `trainer.loop`.
"""

from __future__ import annotations

import json
import os
from typing import Optional, Sequence

import gin
import tensorflow as tf
from absl import logging

from gin_trainer.errors import ConfigError

_TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                      '"task": {"type": "worker", "index": 0}}')


@gin.configurable
def mirrored_strategy(devices: Optional[Sequence[str]] = None,
                      cpu_replicas: Optional[int] = None) -> tf.distribute.MirroredStrategy:
  """Synchronous data parallelism over the devices of this machine.

  Args:
    devices: Device names, e.g. `['/gpu:0', '/gpu:1']`; None: every local GPU
      (the CPU when there is none).
    cpu_replicas: Split the CPU into this many logical devices and use them
      as the replicas: no speed-up, but it runs the distributed code path on
      a laptop (and in the tests). Only before TensorFlow has started.

  Returns:
    The strategy.

  Raises:
    ConfigError: `devices` names a device this machine does not have.
  """
  if cpu_replicas is not None:
    devices = _split_cpu(cpu_replicas)
  elif devices is not None:
    _check_local_devices(devices)
  return tf.distribute.MirroredStrategy(devices)


def _check_local_devices(devices: Sequence[str]) -> None:
  """Refuses names of devices this machine lacks: a strategy on them waits forever."""
  def kind_and_index(name: str) -> tuple:
    spec = tf.DeviceSpec.from_string(name)
    return (spec.device_type or '').upper(), spec.device_index or 0

  present = [device.name for device in tf.config.list_logical_devices()]
  missing = [name for name in devices
             if kind_and_index(name) not in {kind_and_index(p) for p in present}]
  if missing:
    raise ConfigError(
        f'mirrored_strategy.devices names {missing}, which this machine does not have; it has '
        f'{present}. Bind devices it has, or leave mirrored_strategy.devices unbound (every '
        'local GPU, else the CPU)')


@gin.configurable
def multi_worker_mirrored_strategy(communication: str = 'auto'
                                   ) -> tf.distribute.MultiWorkerMirroredStrategy:
  """Synchronous data parallelism over several machines (each with its local devices).

  Every machine runs the same `main.py` command with its own `TF_CONFIG`
  (the cluster, and this worker's index); worker 0 is the chief.

  Args:
    communication: Collective implementation: 'auto', 'ring' (gRPC) or
      'nccl' (GPUs).

  Returns:
    The strategy.

  Raises:
    ConfigError: TF_CONFIG is set but is not a cluster with this task in it,
      or `communication` is unknown.
  """
  tf_config = _checked_tf_config()
  if tf_config:  # Building the strategy waits, silently, for every worker to start.
    workers = sum(len(addresses) for addresses in tf_config['cluster'].values())
    logging.info('Joining the cluster of TF_CONFIG as %s %s (of %d workers); waiting until '
                 'every worker has started.', tf_config['task']['type'],
                 tf_config['task']['index'], workers)
  kinds = tf.distribute.experimental.CommunicationImplementation
  names = [name.lower() for name in kinds.__members__]
  if communication.lower() not in names:
    raise ConfigError(f'multi_worker_mirrored_strategy.communication is one of {names}, '
                      f'not {communication!r}')
  return tf.distribute.MultiWorkerMirroredStrategy(
      communication_options=tf.distribute.experimental.CommunicationOptions(
          implementation=kinds[communication.upper()]))


def _checked_tf_config() -> Optional[dict]:
  """TF_CONFIG, read: None if unset; if set, JSON naming a cluster and this task in it."""
  text = os.environ.get('TF_CONFIG')
  if not text:
    return None  # No cluster: one worker, this machine.
  try:
    tf_config = json.loads(text)
    task = tf_config['task']
    _ = tf_config['cluster'][task['type']][int(task['index'])]  # This task's address.
  except (ValueError, KeyError, IndexError, TypeError) as error:
    raise ConfigError(
        f'TF_CONFIG={text!r} does not name a cluster with this task in it '
        f'({type(error).__name__}: {error}); set it to JSON such as '
        f'{_TF_CONFIG_EXAMPLE}') from None
  return tf_config


def _split_cpu(replicas: int) -> list:
  cpu = tf.config.list_physical_devices('CPU')[0]
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
  except RuntimeError:
    raise ConfigError('mirrored_strategy.cpu_replicas must take effect before TensorFlow '
                      'starts; build the strategy before running any TensorFlow op') from None
  return [device.name for device in tf.config.list_logical_devices('CPU')]
