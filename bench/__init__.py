"""Benchmark suite of the scheduler and its peers (RQ, Huey, Dramatiq).

Run everything with ``bash bench/run.sh [--quick]``; see ``docs/benchmarks.md``.

Modules:

* :mod:`bench.main` -- the orchestrator: starts a throwaway Redis server, runs
  every scenario N times (each trial in a fresh Python process), writes JSON
  and a markdown report under ``bench/results/``.
* :mod:`bench.trial` -- one trial of one scenario for one library.
* :mod:`bench.libs` -- the adapter protocol, ours, and ``make`` (any library's
  adapter by name); :mod:`bench.peers` -- the peers' adapters (RQ, Huey,
  Dramatiq), each through its public API.
* :mod:`bench.variants` -- ours with one feature on (capacity, limits,
  timeouts, learned time, middleware, the async producer): feature costs.
* :mod:`bench.cluster` -- 8 queues on a 3-master Redis Cluster vs one server.
* :mod:`bench.app`, :mod:`bench.peer_rq`, :mod:`bench.peer_huey`,
  :mod:`bench.peer_dramatiq` -- the task modules the workers import.
* :mod:`bench.report` -- JSON -> markdown; :mod:`bench.issue16` -- its
  issue-16 part (targets met/missed, feature costs).
* :mod:`bench.profile` -- py-spy profiles of the drain and enqueue paths.
"""
