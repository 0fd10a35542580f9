"""tinygan's benchmarks: `python -m benchmarks --help`."""
