"""Benchmarks: `make bench` (python -m bench) measures every ingest path on one generated export."""
