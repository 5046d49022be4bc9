"""A point's scalars as one serialized `Event` proto, built on the host.

Writing a point with `tf.summary.write` costs a graph one op per tag, and
each op ~8 us where the Trainer wrote them (50 ops per call in a throughput
run, a tenth of its time). The host already holds the values, so it
serializes the point's whole `Event`, with the wall time at which it got
them (and `EventFile` appends it to the event file). The values are those that
`tf.summary.scalar` writes: a float32 scalar tensor under the scalars
plugin's metadata.
"""

from __future__ import annotations

import array
from typing import Dict, Optional, Sequence, Tuple

from tensorboard.compat.proto import (event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2,
                                      types_pb2)
from tensorboard.plugins.scalar import metadata as scalar_metadata

# Stands for the value's 4 bytes in a template. 0xff never occurs in UTF-8
# (the tag) nor in the short fields around it, so it cannot occur by chance.
_MARKER = b'\xff\xff\xff\xff'
_METADATA = scalar_metadata.create_summary_metadata(display_name=None, description=None)
_EVENT_SUMMARY_KEY = b'\x2a'  # Event.summary: field 5, length-delimited.


class PointEncoder:
  """Serializes the values of a fixed list of tags as an `Event` proto.

  A `Summary` serializes as its values' records one after the other, so
  each tag's record is a template, serialized once, with a marker where
  its value's bytes go. A serialized message followed by more fields
  parses as the message with those fields, so the `Event`'s summary is
  appended to its wall time and step.

  Args:
    tags: The tags of a point, in the order `event` takes their values.
  """

  def __init__(self, tags: Sequence[str]):
    self.tags = list(tags)
    self._templates: Dict[str, Tuple[bytes, bytes]] = {}
    for tag in self.tags:
      value = summary_pb2.Summary.Value(
          tag=tag, metadata=_METADATA,
          tensor=tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT,
                                        tensor_shape=tensor_shape_pb2.TensorShapeProto(),
                                        tensor_content=_MARKER))
      head, tail = summary_pb2.Summary(value=[value]).SerializeToString().split(_MARKER)
      self._templates[tag] = head, tail
    self._every = (True,) * len(self.tags)

  def event(self, step: int, wall_time: float, values: Sequence[float],
            emit: Optional[Sequence[bool]] = None) -> bytes:
    """The serialized `Event` of the tags that `emit` marks, with their values.

    Args:
      step: The event's step.
      wall_time: Its wall time, in seconds since the epoch.
      values: One value per tag, cast to float32 (as `tf.cast` does: out of
        range becomes inf).
      emit: One flag per tag: whether to include it (at least one); None: every tag.

    Returns:
      The proto's bytes.
    """
    summary = self._summary(values, self._every if emit is None else emit)
    head = event_pb2.Event(wall_time=wall_time, step=step).SerializeToString()
    return b''.join((head, _EVENT_SUMMARY_KEY, _varint(len(summary)), summary))

  def _summary(self, values: Sequence[float], emit: Sequence[bool]) -> bytes:
    packed = array.array('f', values).tobytes()
    parts = []
    for i, (tag, included) in enumerate(zip(self.tags, emit)):
      if included:
        head, tail = self._templates[tag]
        parts += (head, packed[4 * i:4 * i + 4], tail)
    return b''.join(parts)


def _varint(number: int) -> bytes:
  """A protobuf varint: 7 bits a byte, least significant first, high bit on all but the last."""
  out = bytearray()
  while number > 0x7f:
    out.append(number & 0x7f | 0x80)
    number >>= 7
  out.append(number)
  return bytes(out)
