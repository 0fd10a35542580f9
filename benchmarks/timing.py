"""Timing that survives noisy shared machines: warm-up, repeats, median with min and max."""
import statistics
import time


def summary(samples):
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "repeats": len(samples)}


def timed_call(function, synchronize=None):
    """Seconds one call of ``function`` takes. ``synchronize`` (the GPU's) runs before the clock
    starts and before it stops, so asynchronous device work is inside the timed region."""
    if synchronize:
        synchronize()
    start = time.perf_counter()
    function()
    if synchronize:
        synchronize()
    return time.perf_counter() - start


def measure(function, repeats, warmup=2, synchronize=None):
    """Call ``function`` warmup + repeats times; seconds of the timed calls as median, min, max."""
    for _ in range(warmup):
        function()
    return summary([timed_call(function, synchronize) for _ in range(repeats)])


def measure_pair(first, second, repeats, warmup=2, block=1):
    """Time two things in alternation; ``first`` and ``second`` each run once and return its seconds.

    On a shared machine the speed drifts by 10-30% over seconds, as other jobs
    come and go. Timed one after the other, the two would see different
    machines; in alternation each pair sees about the same one, so the median
    of the per-pair ratios first/second is far steadier than the ratio of the
    two medians. Returns (first's summary, second's, ratio summary).

    With ``block`` > 1 each side runs block + 1 times in a row and counts the
    median of the last block: a training loop runs its steps back to back, and
    the first call after the other side's is not one of its steps. On 2 cores
    it paid for the other process's threads still spinning and its own thread
    pools, caches and clocks coming back: a 10 ms mlp step took 17 ms there.
    """
    def timed(function):
        if block == 1:
            return function()
        function()   # the first call after the other side's: not a step of a running loop
        return statistics.median([function() for _ in range(block)])

    for _ in range(warmup):
        first()
        second()
    a, b = [], []
    for _ in range(repeats):
        a.append(timed(first))
        b.append(timed(second))
    return summary(a), summary(b), summary([x / y for x, y in zip(a, b)])
