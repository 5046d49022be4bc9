"""Summaries: what a run shows in TensorBoard and on the console.

`manager.SummaryManager` turns the loop's sums into one point per summary
interval (`interval_sums`), written to train/ and val/ by a `split_writer`
that never writes a point twice, with one console line each (`progress`).
`operative_config` saves the gin config a run used; `hparams` writes a
finished run's hyper-parameters for the HParams dashboard;
`gradient_stats` and `image_grid` are helpers for steps and hooks;
`event_files` reads the scalars back.
"""
