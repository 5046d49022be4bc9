"""One run's host loop: restore, call the compiled loop, evaluate, save, stop."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Callable, Dict, Optional

import tensorflow as tf
from absl import logging

from gin_trainer.config import keras_configurables
from gin_trainer.errors import Interrupted, NonFiniteError
from gin_trainer.intervals import LoopSizer
from gin_trainer.loop.compiled_loop import MAX_INTERVALS
from gin_trainer.run.profile_window import ProfileWindow
from gin_trainer.run.stop_signals import StopRequests
from gin_trainer.summaries import operative_config, run_summary

if TYPE_CHECKING:
  from gin_trainer.trainer import Trainer


class TrainingRun:
  """Trains a `Trainer` from its latest checkpoint to its last step.

  Each call of the compiled loop ends where an event is due: an
  evaluation (run in the same call), a checkpoint, the end. Between calls
  the host writes the points, saves, and stops on a signal or a NaN.

  Args:
    trainer: The Trainer whose model, data, checkpoints and summaries it drives.
    stop: The run's stop requests (SIGTERM, SIGINT).
    on_start: Called once the run has something to train (see `Trainer.train`).
  """

  def __init__(self, trainer: Trainer, stop: StopRequests,
               on_start: Optional[Callable[[], None]] = None):
    self.trainer = trainer
    self.stop = stop
    self.on_start = on_start
    self.profile = ProfileWindow(trainer.profile_steps if trainer.is_chief else None,
                                 os.path.join(trainer.model_dir, 'train'))

  def run(self) -> Dict[str, float]:
    """Trains to the end; returns the final scalars, as `Trainer.train` does."""
    try:
      return self._train()
    finally:
      self.profile.close()  # Keeps the trace of a run that stopped inside its window.

  def _train(self) -> Dict[str, float]:
    trainer, stop = self.trainer, self.stop
    summaries, checkpoints = trainer.summaries, trainer.checkpoints
    loop = trainer.compiled_loop()  # Creates every variable, so restoring can fill them.
    step = self._restore()
    if step >= trainer.total_steps or trainer.best.stopped:
      early = f' (stopped early; best {trainer.best.describe()})' if trainer.best.stopped else ''
      logging.info('Training already finished at step %d in %s%s; nothing to do.',
                   step, trainer.model_dir, early)
      return {}
    if self.on_start is not None:
      self.on_start()
    summaries.open(['train'] + (['val'] if trainer.val_data is not None else []),
                   write=trainer.is_chief)
    sizer = LoopSizer([period for period in (trainer.eval_every, checkpoints.period_in_steps())
                       if period],
                      summaries.interval_steps, loop.spans_intervals, trainer.total_steps,
                      trainer.steps_per_loop, trainer.seconds_per_loop, MAX_INTERVALS,
                      ends=self.profile.ends())
    first_step, final, began = step, {}, time.monotonic()
    while step < trainer.total_steps:
      num_steps = sizer.next(step)
      end = step + num_steps
      evaluate = trainer.val_data is not None and (
          end == trainer.total_steps or bool(trainer.eval_every and end % trainer.eval_every == 0))
      with self.profile.loop(step, end):
        result = loop(step, num_steps, evaluate, stop=stop.requested,
                      save=checkpoints.is_due(end))
      final = summaries.add_train(result.parts, result.seconds / result.steps, step,
                                  steady=not result.first_call) or final
      if result.non_finite:
        summaries.flush()  # With the intervals that ended before it.
        raise NonFiniteError(*result.non_finite, checkpoints.latest,
                             keras_configurables.clipping_binding(trainer.optimizer))
      sizer.measured(num_steps, result.seconds)
      if step == first_step and trainer.is_chief:  # The config has been used: it is complete.
        operative_config.save(trainer.model_dir, summaries, end)
      step = end
      stop_early = False
      if evaluate:
        final = self._evaluated(step, result.val_means)
        stop_early = self._kept_best(step, result.val_means)
      if trainer.replicas.multi_worker:  # Workers save and stop together, or wait forever.
        stop_now, save_now = result.stop, result.save
      else:  # Also a signal that came during the call.
        stop_now, save_now = stop.requested, checkpoints.is_due(step)
      if step == trainer.total_steps or stop_now or save_now or stop_early:
        self._save(step)
        if stop_now:
          number = stop.signal_number or signal.SIGTERM  # Or the signal came to another worker.
          raise Interrupted(signal.Signals(number).name, number, step, checkpoints.latest)
      if stop_early:
        logging.info('Stopping early at step %d: no improvement of val %s in %d evaluations; '
                     'the best, %s, is in %s.', step, trainer.best.monitor,
                     trainer.best.patience, trainer.best.describe(), checkpoints.best_directory)
        break
      summaries.maybe_flush()
    self._finish(step, steps_trained=step - first_step, seconds=time.monotonic() - began)
    return final

  def _finish(self, step: int, steps_trained: int, seconds: float) -> None:
    """After the last step: the test split's evaluation, then the run's summary (chief)."""
    trainer, summaries, checkpoints = self.trainer, self.trainer.summaries, self.trainer.checkpoints
    if trainer.test_data is not None:
      evaluation = trainer.compiled_loop().evaluation(trainer.test_data)
      summaries.add_evaluation(trainer.test_split, step, evaluation(), write=trainer.is_chief)
    summaries.flush()
    if trainer.is_chief:
      summary = run_summary.build(
          trainer.model_dir, step, trainer.best.stopped, steps_trained, seconds,
          summaries.last_points,
          trainer.best.summary(tf.train.latest_checkpoint(checkpoints.best_directory)),
          checkpoints.latest)
      run_summary.save(trainer.model_dir, summary)
      logging.info('Run summary:\n%s', run_summary.table(summary))

  def _restore(self) -> int:
    """Restores the latest checkpoint, if any; returns the global step to start from."""
    trainer = self.trainer
    trainer.checkpoints.track(trainer.checkpoint_items(), model=trainer.model,
                              settings=trainer.checkpoint_settings())
    restored = trainer.checkpoints.restore_latest()
    step = int(trainer.global_step.numpy())
    trainer.summaries.restored(step)
    trainer.train_data.seek(step, int(trainer.data_seed.numpy()))
    if restored:
      epoch = f', epoch {step / trainer.steps_per_epoch:.4g}' if trainer.steps_per_epoch else ''
      logging.info('Resumed at step %d%s from %s', step, epoch, restored)
    else:
      logging.info('Starting at step 0: no checkpoint in %s yet.',
                   trainer.checkpoints.directory)
    return step

  def _evaluated(self, step: int, means: Dict[str, float]) -> Dict[str, float]:
    """Writes an evaluation's means, then runs `eval_summaries` (unless its step is on disk)."""
    summaries = self.trainer.summaries
    summaries.add_val(step, means)
    if summaries.hook_is_new('val', step, known_tags=list(means)):
      with summaries.as_default('val', step):
        self.trainer.eval_summaries()
    return means

  def _kept_best(self, step: int, means: Dict[str, float]) -> bool:
    """Saves the best checkpoint if this evaluation is the best; returns whether to stop early."""
    best = self.trainer.best
    if best.monitor is None:
      return False
    if best.evaluated(step, means):
      self.trainer.summaries.save()
      path = self.trainer.checkpoints.save(step, best=True)
      logging.info('New best %s: saved %s', best.describe(), path)
    return best.stopped

  def _save(self, step: int) -> None:
    """Saves a checkpoint at `step` with the summary interval so far, then flushes."""
    self.trainer.summaries.save()
    self.trainer.checkpoints.save(step)
    self.trainer.summaries.flush()
