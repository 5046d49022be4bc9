"""A point's scalars as one serialized `Summary` proto, built on the host.

Writing a point with `tf.summary.write` costs its graph one op per tag, and
each op ~8 us where the Trainer writes (50 ops per call in a throughput run,
a tenth of its time). The host already holds the values, so it serializes
the point's whole `Summary` and the graph writes it with one
`tf.summary.experimental.write_raw_pb`. The bytes are those that
`tf.summary.scalar` writes: a float32 scalar tensor under the scalars
plugin's metadata.
"""

from __future__ import annotations

import array
from typing import Dict, Sequence, Tuple

from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata

# Stands for the value's 4 bytes in a template. 0xff never occurs in UTF-8
# (the tag) nor in the short fields around it, so it cannot occur by chance.
_MARKER = b'\xff\xff\xff\xff'
_METADATA = scalar_metadata.create_summary_metadata(display_name=None, description=None)


class PointEncoder:
  """Serializes the values of a fixed list of tags as a `Summary` proto.

  A `Summary` serializes as its values' records one after the other, so
  each tag's record is a template, serialized once, with a marker where
  its value's bytes go.

  Args:
    tags: The tags of a point, in the order `encode` takes their values.
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

  def encode(self, values: Sequence[float], emit: Sequence[bool]) -> bytes:
    """The serialized `Summary` of the tags that `emit` marks, with their values.

    Args:
      values: One value per tag, cast to float32 (as `tf.cast` does: out of
        range becomes inf).
      emit: One flag per tag: whether to include it.

    Returns:
      The proto's bytes; empty if no tag is included.
    """
    packed = array.array('f', values).tobytes()
    parts = []
    for i, (tag, included) in enumerate(zip(self.tags, emit)):
      if included:
        head, tail = self._templates[tag]
        parts += (head, packed[4 * i:4 * i + 4], tail)
    return b''.join(parts)
