#!/usr/bin/env bash
# One command for users and contributors: sets up .venv (the first time, and
# again whenever pyproject.toml changes), then runs a task.
#
#   ./dev.sh train [main.py flags...]   train the default regression experiment
#   ./dev.sh test  [pytest args...]     run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "dev.sh: installing gin-trainer and its dependencies into $venv ..." >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e '.[test]'
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi

task="${1:-}"
shift || true
case "$task" in
  train) exec "$venv/bin/python" main.py --gin_file=regression.gin "$@" ;;
  test) exec "$venv/bin/python" -m pytest "$@" ;;
  *) echo "usage: ./dev.sh train|test [args...]" >&2; exit 2 ;;
esac
