"""A finished run in brief, printed as a short table and kept as `model_dir/run_summary.json`."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Tuple

import tensorflow as tf

from gin_trainer.summaries import progress, tags

RUN_SUMMARY_FILE = 'run_summary.json'

# Each split's last point: (global step, {tag: value}).
LastPoints = Dict[str, Tuple[int, Dict[str, float]]]


def build(model_dir: str, step: int, stopped_early: bool, steps_trained: int, seconds: float,
          last_points: LastPoints, best: Optional[Dict[str, Any]],
          checkpoint: Optional[str]) -> Dict[str, Any]:
  """The summary of a run that ended (at its last step, or early).

  Args:
    model_dir: The run's directory.
    step: The global step it ended at.
    stopped_early: Whether `BestCheckpoint.patience` ended it.
    steps_trained: The steps this process trained (after a resume, not all).
    seconds: This process's time training them, from restore to the last save.
    last_points: Each split's last point this process wrote (train, val,
      eval_<split>).
    best: The best checkpoint's scalar, value, step and path; None if not kept.
    checkpoint: The last checkpoint's path.

  Returns:
    A JSON-ready dict.
  """
  return {
      'model_dir': model_dir,
      'step': step,
      'stopped_early': stopped_early,
      'steps_trained': steps_trained,
      'seconds': round(seconds, 3),
      'steps_per_second': round(steps_trained / seconds, 3) if seconds > 0 else None,
      'scalars': {split: {'step': at, **{tag: value for tag, value in values.items()
                                         if tag not in tags.TIMINGS}}
                  for split, (at, values) in last_points.items()},
      'best': best,
      'checkpoint': checkpoint,
      'event_files': {split: os.path.join(model_dir, split) for split in last_points},
  }


def save(model_dir: str, summary: Dict[str, Any]) -> None:
  """Writes `model_dir/run_summary.json`."""
  with tf.io.gfile.GFile(os.path.join(model_dir, RUN_SUMMARY_FILE), 'w') as f:
    f.write(json.dumps(summary, indent=2) + '\n')


def table(summary: Dict[str, Any]) -> str:
  """The summary as a few aligned lines, for the console."""
  speed = summary['steps_per_second']
  rows = [('ended', f"step {summary['step']}" + (' (stopped early)' if summary['stopped_early']
                                                 else '')),
          ('trained', f"{summary['steps_trained']} steps in {summary['seconds']:.3g} s"
                      + (f', {speed:.4g} steps/s' if speed else ''))]
  for split, values in summary['scalars'].items():
    shown = {tag: value for tag, value in values.items() if tag != 'step'}
    rows.append((split, f"{progress.scalars_text(shown)} (step {values['step']})"))
  best = summary['best']
  if best:
    rows.append(('best', f"val {best['scalar']} {best['value']:.4g} at step {best['step']}: "
                         f"{best['checkpoint']}"))
  rows.append(('checkpoint', str(summary['checkpoint'])))
  rows.append(('summary', os.path.join(summary['model_dir'], RUN_SUMMARY_FILE)))
  width = max(len(name) for name, _ in rows)
  return '\n'.join(f'  {name:<{width}}  {text}' for name, text in rows)
