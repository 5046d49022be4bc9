"""XLA's persistent compilation cache, so a rerun or a sweep of the same model compiles once.

TensorFlow keeps each XLA program it compiles in a directory named by
TF_XLA_FLAGS, read when TensorFlow starts; a later process that lowers the
same program loads it instead of compiling. The command turns this on
before it imports TensorFlow. Programs compiled for one processor may not
run on another (AVX-512 code on a machine without it), so each TensorFlow
version and machine gets a directory of its own under the cache.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.metadata
import os
import platform
from typing import Optional

CACHE_ENV = 'GIN_TRAINER_XLA_CACHE'  # A directory; empty: no cache.
TF_XLA_FLAGS = 'TF_XLA_FLAGS'
CACHE_FLAG = '--tf_xla_persistent_cache_directory'


def default_root() -> str:
  """`$XDG_CACHE_HOME/gin-trainer/xla`, by default `~/.cache/gin-trainer/xla`."""
  cache = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(cache, 'gin-trainer', 'xla')


def machine_key() -> str:
  """A short hash of what compiled code depends on: TensorFlow, the processor, the GPUs."""
  parts = [importlib.metadata.version('tensorflow'), platform.machine()]
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as cpuinfo:
      parts += [line for line in cpuinfo if line.startswith(('flags', 'model name'))][:2]
  except OSError:  # Not Linux: the processor's name stands for its features.
    parts.append(platform.processor())
  for information in sorted(glob.glob('/proc/driver/nvidia/gpus/*/information')):
    with open(information, encoding='utf-8') as gpu:
      parts += [line for line in gpu if line.startswith('Model')]
  return hashlib.sha256('\n'.join(parts).encode()).hexdigest()[:12]


def enable() -> Optional[str]:
  """Points XLA at this machine's cache directory; call before TensorFlow is imported.

  The directory is `$GIN_TRAINER_XLA_CACHE` (an empty value turns the
  cache off), else `default_root()`, plus `machine_key()`. Nothing changes
  when TF_XLA_FLAGS already names a cache, or when the directory cannot be
  made (a read-only home): the run then compiles as usual.

  Returns:
    The directory used, or None.
  """
  root = os.environ.get(CACHE_ENV, default_root())
  flags = os.environ.get(TF_XLA_FLAGS, '')
  if not root or CACHE_FLAG in flags:
    return None
  directory = os.path.join(root, machine_key())
  try:
    os.makedirs(directory, exist_ok=True)
  except OSError:
    return None
  if not os.access(directory, os.W_OK):
    return None
  os.environ[TF_XLA_FLAGS] = f'{flags} {CACHE_FLAG}={directory}'.strip()
  return directory
