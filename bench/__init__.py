"""Benchmarks: `python -m bench` runs every bench module (see bench/__main__.py)."""
