"""Benchmark suite of the scheduler and its peers (RQ, Huey).

Run everything with ``bash bench/run.sh [--quick]``; see ``docs/benchmarks.md``.

Modules:

* :mod:`bench.main` -- the orchestrator: starts a throwaway Redis server, runs
  every scenario N times (each trial in a fresh Python process), writes JSON
  and a markdown report under ``bench/results/``.
* :mod:`bench.trial` -- one trial of one scenario for one library.
* :mod:`bench.libs` -- a thin adapter per library (ours, RQ, Huey) through
  their public APIs.
* :mod:`bench.app`, :mod:`bench.peer_rq`, :mod:`bench.peer_huey` -- the task
  modules the workers import.
* :mod:`bench.report` -- JSON -> markdown.
* :mod:`bench.profile` -- py-spy profiles of the drain and enqueue paths.
"""
