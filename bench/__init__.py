"""Benchmarks of the SLA Support Suite (``make bench`` = ``python -m bench``).

Every figure is a ratio against a baseline measured in the same run on the same broker;
results go to ``bench/results/<name>.json``. Never part of ``make test``.
"""
