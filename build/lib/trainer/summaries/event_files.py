"""Reading scalars back from a run's event files, as TensorBoard stores them."""

from __future__ import annotations

import collections
import glob
import os
from typing import Dict, Iterator, List, Set, Tuple

import numpy as np
import tensorflow as tf

Points = List[Tuple[int, float]]
ImageSizes = List[Tuple[int, int, int]]


def _events(log_dir: str) -> Iterator[tf.compat.v1.Event]:
  """Every event in the event files directly inside `log_dir`, file by file.

  A file's truncated last record (a process killed while writing) ends that
  file, as it does for TensorBoard.
  """
  for path in sorted(glob.glob(os.path.join(log_dir, 'events.out.tfevents.*'))):
    records = iter(tf.data.TFRecordDataset(path))
    while True:
      try:
        record = next(records)
      except (StopIteration, tf.errors.DataLossError):
        break
      yield tf.compat.v1.Event.FromString(record.numpy())


def _values(log_dir: str, plugin: str) -> Iterator[Tuple[int, str, np.ndarray]]:
  """(step, tag, tensor) of every summary of one plugin under `log_dir`, in order."""
  for event in _events(log_dir):
    for value in event.summary.value:
      if value.metadata.plugin_data.plugin_name == plugin:
        yield event.step, value.tag, tf.make_ndarray(value.tensor)


def steps(log_dir: str) -> Dict[str, Set[int]]:
  """The steps of each tag under `log_dir`, whatever its kind."""
  found: Dict[str, Set[int]] = collections.defaultdict(set)
  for event in _events(log_dir):
    for value in event.summary.value:
      found[value.tag].add(event.step)
  return dict(found)


def last_steps(log_dir: str) -> Dict[str, int]:
  """The highest step of each tag under `log_dir`, whatever its kind."""
  return {tag: max(tag_steps) for tag, tag_steps in steps(log_dir).items()}


def read_scalars(log_dir: str) -> Dict[str, Points]:
  """Every scalar point in the event files directly inside `log_dir`.

  Args:
    log_dir: A run directory such as `model_dir/train`.

  Returns:
    `{tag: [(step, value), ...]}` in the order written.
  """
  scalars: Dict[str, Points] = collections.defaultdict(list)
  for step, tag, tensor in _values(log_dir, 'scalars'):
    scalars[tag].append((step, float(tensor)))
  return dict(scalars)


def read_texts(log_dir: str) -> Dict[str, List[Tuple[int, str]]]:
  """Every text summary under `log_dir`: `{tag: [(step, text), ...]}`."""
  texts: Dict[str, List[Tuple[int, str]]] = collections.defaultdict(list)
  for step, tag, tensor in _values(log_dir, 'text'):
    texts[tag].append((step, tensor.item().decode()))
  return dict(texts)


def read_image_sizes(log_dir: str) -> Dict[str, ImageSizes]:
  """Every image summary under `log_dir`: `{tag: [(step, width, height), ...]}`.

  Only the first image of each summary is measured.
  """
  images: Dict[str, ImageSizes] = collections.defaultdict(list)
  for step, tag, tensor in _values(log_dir, 'images'):
    width, height = int(tensor[0]), int(tensor[1])  # Then the encoded images.
    images[tag].append((step, width, height))
  return dict(images)
