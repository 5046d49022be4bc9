"""The one place that chooses how a split is read: which `Batches` implementation."""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple, Union

import tensorflow as tf

from gin_trainer.data import finite_checks
from gin_trainer.data.contract import Batches
from gin_trainer.data.device import DeviceData
from gin_trainer.data.distributed import DistributedData
from gin_trainer.data.examples import Examples, first_examples, is_arrays
from gin_trainer.data.pipeline import PipelineData
from gin_trainer.distribute.replicas import Replicas
from gin_trainer.errors import DataError


def batches(examples: Examples, batch_size: int, training: bool, *, replicas: Replicas,
            seed: Union[int, tf.Variable], shuffle: bool, on_device: bool,
            binding: str) -> Batches:
  """One split, batched for the loops.

  Under a strategy: `DistributedData` (global batches split among the
  replicas). Else arrays, with `on_device`: `DeviceData` (held on the
  device, batched in the graph). Else a `tf.data` pipeline: `PipelineData`.

  Args:
    examples: The unbatched examples a data builder returned.
    batch_size: Examples per batch (global, under a strategy).
    training: Shuffle, drop each epoch's last partial batch, repeat.
    replicas: Where the run trains.
    seed: The data seed: a variable (restored with checkpoints) that the
      graph reads, or its value.
    shuffle: Reorder the training examples every epoch.
    on_device: Hold array splits on the device (`Trainer.data_on_device`).
    binding: The batch size's binding, for messages.

  Returns:
    The split's batches.
  """
  if replicas.distributed:
    return DistributedData(replicas, examples, batch_size, training, binding, shuffle=shuffle,
                           on_device=on_device)
  if on_device and is_arrays(examples):
    return DeviceData(examples, batch_size, training, seed=seed, shuffle=shuffle)
  return PipelineData(examples, batch_size, training, seed=int(tf.convert_to_tensor(seed)),
                      shuffle=shuffle)


def splits(data: Callable[[str], Examples], train_split: str, val_split: Optional[str],
           batch_size: int, eval_batch_size: int, eval_steps: Optional[int], *,
           check_finite: bool, replicas: Replicas, seed: Union[int, tf.Variable], shuffle: bool,
           on_device: bool) -> Tuple[Batches, Optional[Batches]]:
  """The training and evaluation batches of a run, from its data builder.

  Args:
    data: The data builder (`Trainer.data`), called once per split.
    train_split: The training split's name.
    val_split: The evaluation split's name; None: no evaluation.
    batch_size: Examples per training step.
    eval_batch_size: Examples per evaluation step.
    eval_steps: Evaluate on the first this many batches; None: all.
    check_finite: Check each split for NaN and Inf first (`finite_checks`).
    replicas, seed, shuffle, on_device: As for `batches`.

  Returns:
    The training batches, and the evaluation batches or None.

  Raises:
    DataError: The training split holds less than one batch, or (with
      `check_finite`) a split holds NaN or Inf.
  """
  if check_finite:
    data = finite_checks.finite_checked(data)
  read = dict(replicas=replicas, seed=seed, shuffle=shuffle, on_device=on_device)
  train = batches(data(train_split), batch_size, training=True, binding='Trainer.batch_size',
                  **read)
  if train.steps_per_epoch == 0:
    raise DataError(f'the {train_split!r} split has fewer examples than one batch of '
                    f'Trainer.batch_size={batch_size}')
  if val_split is None:
    return train, None
  return train, eval_batches(data(val_split), eval_batch_size, eval_steps, **read)


def eval_batches(examples: Examples, eval_batch_size: int, eval_steps: Optional[int],
                 **read: Any) -> Batches:
  """A split's evaluation batches: its first `eval_steps` batches, or all (None).

  `read` holds `batches`' keyword arguments (replicas, seed, shuffle, on_device).
  """
  if eval_steps is not None:
    examples = first_examples(examples, eval_steps * eval_batch_size)
  return batches(examples, eval_batch_size, training=False, binding='Trainer.eval_batch_size',
                 **read)
