"""Configuration: gin files and bindings, and the checks of what they bind.

`gin_files` finds and parses .gin files and --gin_param bindings (one-line
errors that name the flag, file and line); `gin_names` suggests the closest
registered name for a misspelt one; `keras_configurables` registers Keras
optimizers, schedules and losses with gin; `binding_checks` checks bound
values (factories, positive counts, a writable model_dir) before work starts.
"""
