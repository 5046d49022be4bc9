"""One measured child process: its wall time from start to exit, and its own peak memory.

No TensorFlow here: the process that imports this stays small, which is
what makes the child's `ru_maxrss` its own (Linux keeps a process's peak
resident size across fork and exec, so a child starts from its parent's).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from typing import Mapping, Optional, Sequence

TAIL_CHARS = 3000  # Of a failed child's output, in the error.


@dataclasses.dataclass(frozen=True)
class Measurement:
  """What one child process cost.

  Attributes:
    seconds: Wall time from just before its start to its exit.
    peak_rss_mib: Its peak resident set size (`ru_maxrss`), in MiB.
  """

  seconds: float
  peak_rss_mib: float


class ChildFailed(RuntimeError):
  """A child exited with a non-zero code; the message ends with its output's tail."""


def measure(command: Sequence[str], cwd: str, log_path: str,
            env: Optional[Mapping[str, str]] = None) -> Measurement:
  """Runs `command` to its end and measures it.

  Its stdout and stderr go to `log_path`, as a terminal would take them
  (a pipe could fill up and block it while it is waited for).

  Args:
    command: The program and its arguments.
    cwd: Its working directory.
    log_path: Where its output goes.
    env: Its environment (default: this process's).

  Returns:
    Its wall time and peak RSS.

  Raises:
    ChildFailed: It exited with a non-zero code (or a signal).
  """
  with open(log_path, 'wb') as log:
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT)
    # wait4, not Popen.wait: it also returns the child's resource usage.
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
  child.returncode = os.waitstatus_to_exitcode(status)  # Reaped: Popen must not wait again.
  if child.returncode != 0:
    with open(log_path, errors='replace') as log:
      tail = log.read()[-TAIL_CHARS:]
    raise ChildFailed(f'exit code {child.returncode} from: {" ".join(command)}\n'
                      f'--- its output, last {TAIL_CHARS} characters ---\n{tail}')
  return Measurement(seconds, usage.ru_maxrss / 1024)  # KiB on Linux.
