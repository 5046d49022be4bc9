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
import struct
from typing import Dict, List, Optional, Sequence, Tuple

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
  its value's bytes go; the bytes around the values are then constants,
  and one `struct` format packs them with the values (~0.2 us a point,
  where joining the pieces cost ~1.4). A serialized message followed by
  more fields parses as the message with those fields, so the `Event`'s
  summary is appended to its wall time and step.

  Args:
    tags: The tags of a point, in the order `event` takes their values.
  """

  def __init__(self, tags: Sequence[str]):
    self.tags = list(tags)
    self._templates: List[Tuple[bytes, bytes]] = []
    for tag in self.tags:
      value = summary_pb2.Summary.Value(
          tag=tag, metadata=_METADATA,
          tensor=tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT,
                                        tensor_shape=tensor_shape_pb2.TensorShapeProto(),
                                        tensor_content=_MARKER))
      head, tail = summary_pb2.Summary(value=[value]).SerializeToString().split(_MARKER)
      self._templates.append((head, tail))
    self._packers: Dict[Tuple[bool, ...], Tuple[struct.Struct, List[object]]] = {}
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
    emit = self._every if emit is None else tuple(emit)
    packer, arguments = self._packers.get(emit) or self._packer(emit)
    arguments = arguments.copy()
    arguments[1::2] = (values if emit is self._every else
                       [value for value, included in zip(values, emit) if included])
    try:
      summary = packer.pack(*arguments)
    except OverflowError:  # struct refuses finite values out of float32's range.
      arguments[1::2] = array.array('f', arguments[1::2]).tolist()  # Those become inf.
      summary = packer.pack(*arguments)
    return event_pb2.Event(wall_time=wall_time, step=step).SerializeToString() + summary

  def _packer(self, emit: Tuple[bool, ...]) -> Tuple[struct.Struct, List[object]]:
    """The format of the `Event.summary` field of the tags `emit` marks, and its arguments.

    The arguments are the constant bytes around the values (the field's
    key and length first: a value's bytes are 4, whatever it is), with a
    placeholder at every odd index, where the values go.
    """
    constants, between = [], b''
    for (head, tail), included in zip(self._templates, emit):
      if included:
        constants.append(between + head)
        between = tail
    size = sum(map(len, constants)) + 4 * len(constants) + len(between)
    constants[0] = _EVENT_SUMMARY_KEY + _varint(size) + constants[0]
    packer = struct.Struct('<' + ''.join(f'{len(piece)}sf' for piece in constants) +
                           f'{len(between)}s')
    arguments: List[object] = []
    for piece in constants:
      arguments += (piece, 0.0)
    self._packers[emit] = packer, [*arguments, between]
    return self._packers[emit]


def _varint(number: int) -> bytes:
  """A protobuf varint: 7 bits a byte, least significant first, high bit on all but the last."""
  out = bytearray()
  while number > 0x7f:
    out.append(number & 0x7f | 0x80)
    number >>= 7
  out.append(number)
  return bytes(out)
