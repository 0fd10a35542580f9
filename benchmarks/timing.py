"""Timing that survives noisy shared machines: warm-up, repeats, median with min and max."""
import statistics
import time


def measure(function, repeats, warmup=2, synchronize=None):
    """Call ``function`` warmup + repeats times; seconds of the timed calls as median, min, max.

    ``synchronize`` (the GPU's) runs before the clock starts and before it stops, so
    asynchronous device work is inside the timed region.
    """
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        if synchronize:
            synchronize()
        start = time.perf_counter()
        function()
        if synchronize:
            synchronize()
        samples.append(time.perf_counter() - start)
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "repeats": repeats}
