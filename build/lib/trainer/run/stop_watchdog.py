"""The watchdog process of `stop_signals.stop_within` (standard library only: it starts at once).

Usage: python stop_watchdog.py READ_FD PID GRACE_SECONDS

Reads signal numbers from READ_FD (the run's wakeup pipe). After the first
SIGINT or SIGTERM, if process PID still runs GRACE_SECONDS later (one
second after a second signal), it prints why and kills it. Ends when the
run ends (the pipe closes).
"""

import os
import select
import signal
import sys
import time

STOPS = (signal.SIGINT, signal.SIGTERM)


def main(read_end: int, pid: int, grace_seconds: float) -> None:
  first, deadline = None, None
  while True:
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    if not select.select([read_end], [], [], timeout)[0]:
      break  # The deadline passed.
    numbers = os.read(read_end, 64)
    if not numbers:
      return  # The run ended.
    for number in numbers:
      if number in STOPS and first is None:
        first, deadline = number, time.monotonic() + grace_seconds
      elif number in STOPS:
        deadline = min(deadline, time.monotonic() + 1.0)
  print(f'error: {signal.Signals(first).name} did not stop the run within {grace_seconds:g} s '
        '(TensorFlow held it: starting, compiling or waiting for another worker); killed it. '
        'Rerun the same command to resume from the last checkpoint.', file=sys.stderr, flush=True)
  try:
    os.kill(pid, signal.SIGKILL)
  except ProcessLookupError:  # It ended meanwhile.
    pass


if __name__ == '__main__':
  main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
