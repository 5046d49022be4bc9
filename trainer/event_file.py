"""A run directory's one event file, written by the host, record by record.

The Trainer's points are serialized `Event`s (`point_protos`); appended as
TFRecords from the host they cost ~0.6 us each, where importing them into
a `tf.summary` writer cost a graph op each, ~3 to 10 us. Whatever else goes
to the directory through `tf.summary` (a hook's images, the operative
config's text) is staged in a writer of its own and appended to the same
file, so the directory keeps one live file: TensorBoard's Python loader
(`--load_fast=false`) reads only the newest file of a directory, and would
miss what later went to an older one.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import socket
import tempfile
import time
from typing import Iterator

import tensorflow as tf
from tensorboard.compat.proto import event_pb2

# What `tf.summary` writers put first in a file (TensorBoard reads the version from it).
_FILE_VERSION = 'brain.Event:2'
_file_numbers = itertools.count()  # Tells apart the files a process opens in one second.


class EventFile:
  """Appends serialized `Event`s to a new event file in `log_dir`.

  The name is what `tf.summary.create_file_writer` gives a file, so files
  sort by the time they were opened, as TensorBoard expects.

  Args:
    log_dir: The run directory (e.g. `model_dir/train`); created if needed.
  """

  def __init__(self, log_dir: str):
    tf.io.gfile.makedirs(log_dir)
    name = (f'events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.'
            f'{os.getpid()}.{next(_file_numbers)}.v2')
    self.path = os.path.join(log_dir, name)
    self._records = tf.io.TFRecordWriter(self.path)
    self.write(event_pb2.Event(wall_time=time.time(),
                               file_version=_FILE_VERSION).SerializeToString())

  def write(self, event: bytes) -> None:
    """Appends one serialized `Event` (to disk at the next `flush`, or sooner)."""
    self._records.write(event)

  def flush(self) -> None:
    """Pushes every event written so far to the file."""
    self._records.flush()

  def close(self) -> None:
    """Flushes and closes the file."""
    self._records.close()

  @contextlib.contextmanager
  def summaries_at(self, step: int) -> Iterator[None]:
    """Appends to this file whatever `tf.summary` writes inside the block, at `step`.

    The block's summaries go to a `tf.summary` writer of their own, in a
    temporary directory, and are copied here when it ends (their wall
    times are kept).

    Args:
      step: The default step of the summaries written inside the block.
    """
    with tempfile.TemporaryDirectory() as staging:
      writer = tf.summary.create_file_writer(staging)
      try:
        with writer.as_default(step=step):
          yield
      finally:
        writer.close()
        for path in sorted(glob.glob(os.path.join(staging, 'events.out.tfevents.*'))):
          for record in tf.data.TFRecordDataset(path):
            event = record.numpy()
            if not event_pb2.Event.FromString(event).file_version:
              self.write(event)
