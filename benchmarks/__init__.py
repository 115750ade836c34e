"""Benchmarks of the partition run against its baselines: `python -m benchmarks.run --help`."""
