"""`python main.py ...` in a checkout: the gin-trainer command (trainer/cli.py).

The checkout's trainer/ is the gin_trainer package once installed; `./dev.sh`
or `pip install -e .` installs it (editable) with its dependencies.
"""

try:
  from gin_trainer import cli
except ModuleNotFoundError as error:
  if error.name != 'gin_trainer':
    raise
  raise SystemExit('error: gin_trainer is not installed: run ./dev.sh (or pip install -e .) in '
                   'this checkout, then python main.py again') from None

if __name__ == '__main__':
  cli.run()
