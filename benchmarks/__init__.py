"""Speed benchmarks of gin-trainer against its peers; run `python -m benchmarks.benchmark`."""
