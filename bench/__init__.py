"""Benchmarks for the agent: CPU and forks per sample, the DMA-buf scan, RSS, idle wake-ups, and Glances.

Each module prints its figures and writes JSON with ``--json FILE``; ``python3 -m bench.run_all`` runs
them all.
Results and the commands that produced them are in ``docs/benchmarks.md``.
"""
