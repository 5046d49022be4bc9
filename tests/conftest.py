"""Shared helpers: a clean gin state per test, and running main.py for real."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Dict, Mapping, Optional, Sequence

import gin
import pytest

import models  # noqa: F401  (registers the models with gin, as main.py does)
import trainer  # noqa: F401  (registers the Trainer and Keras names)
from trainer import config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, 'main.py')


@pytest.fixture(autouse=True)
def clean_gin():
  """Every test starts from no bindings, as a fresh `main.py` does."""
  gin.clear_config()
  yield
  gin.clear_config()


def run_main(args: Sequence[str], cwd: str = ROOT, timeout: float = 600,
             env: Optional[Mapping[str, str]] = None) -> subprocess.CompletedProcess:
  """Runs `python main.py ARGS` in a subprocess (`env` adds variables) and returns what it did."""
  return subprocess.run([sys.executable, MAIN, *args], cwd=cwd, capture_output=True,
                        text=True, timeout=timeout, check=False, env={**os.environ, **(env or {})})


def train_regression(model_dir: str, *bindings: str) -> trainer.Trainer:
  """Trains in this process from regression.gin plus `bindings`; returns the Trainer."""
  gin.clear_config()
  config.parse(['regression.gin'], [f'Trainer.model_dir = {str(model_dir)!r}', *bindings])
  run = trainer.Trainer()
  run.train()
  return run


def snapshot(directory) -> Dict[str, bytes]:
  """Every file under `directory`, by relative path, with its bytes."""
  root = pathlib.Path(directory)
  return {str(path.relative_to(root)): path.read_bytes()
          for path in sorted(root.rglob('*')) if path.is_file()}
