"""What learned run times buy: a simulation over the real priority formula.

``python -m bench.learned [--batches 30] [--workers 4] [--seed 1]`` prints a
Markdown table (no Redis: the dispatch order and the statistics are the
pure models the Lua scripts are tested against, bit for bit --
:func:`scheduler.priority.compute_priority`, :func:`~scheduler.priority.ready_score`,
:func:`scheduler.learning.update_stats`, :func:`~scheduler.learning.estimated_time`).

The workload: batches of 200 jobs of three tasks, enqueued at once in random
order -- 180 ``short`` (mean 0.2 s), 15 ``medium`` (2 s), 5 ``long`` (20 s),
each run's duration lognormal around its task's mean with a coefficient of
variation of 0.5, 0.3 and 0.2. ``W`` workers take the best ready job
whenever one is free (list scheduling, one job at a time each). Every
finished run updates its task's statistics, as ``lua/complete.lua`` does;
each job's priority is fixed at enqueue from the statistics then, as in
``lua/enqueue.lua``. Policies (``weight = resource = 1``):

* ``declared 1 s`` -- ``time`` left at the default: all equal, enqueue order;
* ``declared wrong`` -- a plausible bad guess: short 5 s, medium 1 s, long 0.5 s;
* ``learned (auto)`` -- ``time="auto"``: ``mean * (1 + alpha * cv)`` once a
  task has ``min_samples`` runs (defaults ``alpha`` 0.5, 5 samples);
* ``oracle`` -- each job's true duration (a bound no estimate can beat).

``priority = weight * time / resource`` runs the **longest** job first: on
several workers that is Graham's LPT rule, which bounds the makespan (time
to finish a batch) by ``4/3 - 1/(3W)`` of the optimum (R. L. Graham,
"Bounds on multiprocessing timing anomalies", SIAM J. Appl. Math. 17(2),
1969). That is what the estimates improve. The mean completion time is
reported too: longest-first is the *worst* order for it (shortest first
minimises it), so better estimates raise it -- the formula trades it for
the makespan.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
from collections.abc import Callable

from scheduler import defaults
from scheduler.learning import estimated_time, update_stats
from scheduler.priority import compute_priority, ready_score

#: task -> (jobs per batch, mean seconds, coefficient of variation)
TASKS: dict[str, tuple[int, float, float]] = {
    "short": (180, 0.2, 0.5),
    "medium": (15, 2.0, 0.3),
    "long": (5, 20.0, 0.2),
}
WRONG = {"short": 5.0, "medium": 1.0, "long": 0.5}

Stats = dict[str, tuple[int, float, float]]  # task -> (n, mean ms, var ms^2)
#: (task, true duration s, stats at enqueue) -> declared or estimated time, s
TimeOf = Callable[[str, float, Stats], float]


def lognormal(rng: random.Random, mean: float, cv: float) -> float:
    """A duration with this mean and coefficient of variation, seconds."""
    sigma2 = math.log(1 + cv * cv)
    return rng.lognormvariate(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))


def learned(task: str, _true: float, stats: Stats) -> float:
    n, mean_ms, var_ms2 = stats.get(task, (0, 0.0, 0.0))
    if n < defaults.MIN_SAMPLES:
        return defaults.TIME
    return estimated_time(mean_ms, var_ms2, defaults.ALPHA)


POLICIES: dict[str, TimeOf] = {
    "declared 1 s": lambda _task, _true, _stats: defaults.TIME,
    "declared wrong": lambda task, _true, _stats: WRONG[task],
    "learned (auto)": learned,
    "oracle": lambda _task, true, _stats: true,
}


def run_batch(
    jobs: list[tuple[str, float]], time_of: TimeOf, stats: Stats, workers: int
) -> tuple[float, float]:
    """Dispatch one batch on ``workers``; update ``stats`` from each finished
    run (whole ms, like the server). Returns (makespan, mean completion), s."""
    ready = []
    for seq, (task, true) in enumerate(jobs):
        priority = compute_priority(1.0, time_of(task, true, stats), 1.0)
        ready.append((ready_score(priority), seq, task, true))
    ready.sort()  # score ascending, ties in enqueue order: the ready set's order
    free = [0.0] * workers  # when each worker is next free (a heap)
    finished: list[tuple[float, str, float]] = []
    for _score, _seq, task, true in ready:
        start = heapq.heappop(free)
        heapq.heappush(free, start + true)
        finished.append((start + true, task, true))
    for _end, task, true in sorted(finished):
        n, mean, var = stats.get(task, (0, 0.0, 0.0))
        stats[task] = update_stats(n, mean, var, float(round(true * 1000)))
    ends = [end for end, _, _ in finished]
    return max(ends), statistics.fmean(ends)


def simulate(batches: int, workers: int, seed: int) -> dict[str, tuple[float, float]]:
    """Median makespan and mean completion time (s) per policy, over
    ``batches`` batches after the first (the learned policy's warm-up);
    every policy sees the same jobs."""
    rng = random.Random(seed)
    workload = []
    for _ in range(batches + 1):
        jobs = [
            (task, lognormal(rng, mean, cv))
            for task, (count, mean, cv) in TASKS.items()
            for _ in range(count)
        ]
        rng.shuffle(jobs)
        workload.append(jobs)
    out = {}
    for name, time_of in POLICIES.items():
        stats: Stats = {}
        results = [run_batch(jobs, time_of, stats, workers) for jobs in workload]
        out[name] = (
            statistics.median(r[0] for r in results[1:]),
            statistics.median(r[1] for r in results[1:]),
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    work = sum(count * mean for count, mean, _ in TASKS.values())
    print(
        f"{a.batches} batches of {sum(c for c, _, _ in TASKS.values())} jobs "
        f"(mean work {work:.0f} s; ideal makespan {work / a.workers:.1f} s) on "
        f"{a.workers} workers; medians over the batches"
    )
    print()
    print("| order by | makespan (s) | mean completion (s) |")
    print("|---|---:|---:|")
    for name, (makespan, mean_done) in simulate(a.batches, a.workers, a.seed).items():
        print(f"| {name} | {makespan:.1f} | {mean_done:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
