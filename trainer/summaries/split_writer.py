"""One split's event file (train/ or val/), which never writes a point twice."""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator, Mapping, Set

import tensorflow as tf
from absl import logging
from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata

from gin_trainer.summaries import event_files

_SCALAR_METADATA = scalar_metadata.create_summary_metadata(display_name=None, description=None)
_SCALAR_SHAPE = tensor_shape_pb2.TensorShapeProto()


class SplitWriter:
  """A `tf.summary` writer for `model_dir/<split>` that skips points already on disk.

  When it opens, the highest step of each tag already in the directory is
  that tag's high-water mark, and points up to it (recomputed after a run
  resumes from an earlier checkpoint) are not written again. With a seed
  the recomputed values equal the ones on disk, so the curves are exactly
  those of an uninterrupted run. Marks are kept per tag because a resumed
  run may log tags its files lack (e.g. once `gradient_stats` is on).

  Everything of the split goes through the one writer: points, a hook's
  images, texts. So a process adds one event file to the directory.

  Args:
    log_dir: The split's directory; created, with the event file, now.
    in_order: Points come in step order (training's), and a point at or
      before a tag's mark is skipped. False (checkpoints evaluated in any
      order): only a point at a step the tag already has is skipped.
  """

  def __init__(self, log_dir: str, in_order: bool = True):
    self.log_dir = log_dir
    self.in_order = in_order
    self.steps: Dict[str, Set[int]] = event_files.steps(log_dir)
    self.marks: Dict[str, int] = {tag: max(steps) for tag, steps in self.steps.items()}
    if self.marks and in_order:
      logging.info('%s already holds points up to %d; they are not written again.',
                   log_dir, max(self.marks.values()))
    self._writer = tf.summary.create_file_writer(log_dir)

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    """Writes one point: every value past its tag's mark, at `step`, as one event.

    The values are what `tf.summary.scalar` writes (float32 scalar tensors
    for the scalars plugin), in one `Summary`: one host op per point, not
    one per tag.
    """
    summary = summary_pb2.Summary(value=[
        summary_pb2.Summary.Value(
            tag=tag, metadata=_SCALAR_METADATA,
            tensor=tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=_SCALAR_SHAPE,
                                          float_val=[value]))
        for tag, value in values.items() if self.is_new(step, tag)])
    for value in summary.value:
      self.steps.setdefault(value.tag, set()).add(step)
    if summary.value:
      with self._writer.as_default():
        tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)

  def is_new(self, step: int, tag: str) -> bool:
    """Whether a point of `tag` at `step` is to be written (see `in_order`)."""
    if self.in_order:
      return step > self.marks.get(tag, -1)
    return step not in self.steps.get(tag, ())

  @contextlib.contextmanager
  def as_default(self, step: int) -> Iterator[None]:
    """Sends any `tf.summary` call inside the block to this split, at `step`."""
    with self._writer.as_default(step=step):
      yield

  def flush(self) -> None:
    """Pushes everything written so far to the file."""
    self._writer.flush()

