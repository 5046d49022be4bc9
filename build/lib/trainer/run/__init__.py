"""Run state: what lets a run stop, resume and own its model_dir.

`checkpoints` saves and restores (refusing another model, skipping a
corrupt file); `model_dir_lock` keeps one process per model_dir;
`stop_signals` turns SIGTERM and SIGINT into "stop after this loop";
`command_line` records the command a run started with.
"""
