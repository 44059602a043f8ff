"""Benchmark of practice-bot on loopback: ``python bench/run.py [--quick]`` (see README.md)."""
