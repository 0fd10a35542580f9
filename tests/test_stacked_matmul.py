"""A stack of products with a share per core: the same numbers as numpy.matmul, each share on its own thread with
BLAS single-threaded, BLAS's threads given back afterwards, and a pool that survives a fork."""
import multiprocessing
import sys
import threading
import time
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygan.kernels import stacked_matmul

module = sys.modules["tinygan.kernels.stacked_matmul"]   # the module, which the function's name shadows

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_threads():
    return max(info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas")


@pytest.fixture
def two_blas_threads():
    """BLAS on two threads, whatever the machine's cores: the split is then what every call takes."""
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        yield


def use_matmul(monkeypatch, matmul):
    """stacked_matmul with ``matmul`` in numpy.matmul's place."""
    monkeypatch.setattr(module, "numpy", types.SimpleNamespace(matmul=matmul, empty=np.empty,
                                                              result_type=np.result_type))


@given(stack=st.integers(1, 9), rows=st.integers(1, 40), inner=st.integers(1, 40), columns=st.integers(1, 40),
       transposed=st.sampled_from([(False, False), (True, False), (False, True)]),
       dtype=st.sampled_from([np.float32, np.float64]), given_out=st.booleans(), seed=st.integers(0, 2**16))
def test_it_gives_numpys_products(two_blas_threads, stack, rows, inner, columns, transposed, dtype, given_out, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((stack, inner, rows) if transposed[0] else (stack, rows, inner)).astype(dtype)
    b = rng.standard_normal((stack, columns, inner) if transposed[1] else (stack, inner, columns)).astype(dtype)
    a, b = (a.transpose(0, 2, 1) if transposed[0] else a), (b.transpose(0, 2, 1) if transposed[1] else b)
    out = np.full((stack, rows, columns), np.nan, dtype) if given_out else None
    result = stacked_matmul(a, b, out=out)
    assert result.dtype == dtype and (out is None or result is out)
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(result, np.matmul(a, b), rtol=tolerance, atol=tolerance * np.sqrt(inner))


def test_each_share_runs_on_its_own_thread_with_blas_single_threaded(two_blas_threads, monkeypatch):
    calls = []

    def recording_matmul(a, b, out):
        calls.append((threading.current_thread().name, blas_threads(), a.shape[0]))
        return np.matmul(a, b, out=out)

    use_matmul(monkeypatch, recording_matmul)
    a = np.ones((7, 3, 4))
    stacked_matmul(a, np.ones((7, 4, 5)))
    names = [name for name, _, _ in calls]
    assert len(set(names)) == 2 and threading.current_thread().name in names   # the caller takes a share too
    assert all(threads == 1 for _, threads, _ in calls)
    assert sum(size for _, _, size in calls) == 7 and sorted(size for _, _, size in calls) == [3, 4]
    assert blas_threads() == 2   # given back


def products_taken(monkeypatch):
    """The stack sizes numpy.matmul is called with, as stacked_matmul runs (a list filled in as it does)."""
    calls = []
    use_matmul(monkeypatch, lambda a, b, out: calls.append(a.shape[0]) or np.matmul(a, b, out=out))
    return calls


def test_with_blas_on_one_thread_it_is_one_plain_product(monkeypatch):
    calls = products_taken(monkeypatch)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        stacked_matmul(np.ones((6, 2, 2)), np.ones((6, 2, 2)))
    assert calls == [6]


def test_blas_gets_its_threads_back_when_a_product_fails(two_blas_threads):
    with pytest.raises(ValueError):
        stacked_matmul(np.ones((4, 2, 3)), np.ones((4, 3, 2)), out=np.empty((4, 2, 5)))
    assert blas_threads() == 2


def test_an_error_in_the_callers_share_returns_only_once_the_workers_are_done(two_blas_threads, monkeypatch):
    finished = []

    def matmul(a, b, out):
        if not threading.current_thread().name.startswith("tinygan-matmul"):
            raise ValueError("the caller's share failed")
        time.sleep(0.2)   # a worker still writing into out when the caller's share fails
        finished.append(a.shape[0])
        return np.matmul(a, b, out=out)

    use_matmul(monkeypatch, matmul)
    with pytest.raises(ValueError, match="caller's share"):
        stacked_matmul(np.ones((4, 2, 3)), np.ones((4, 3, 2)))
    assert finished == [2] and blas_threads() == 2


def _product_in_a_child(queue):
    queue.put(float(stacked_matmul(np.ones((4, 2, 3)), np.ones((4, 3, 2))).sum()))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this platform")
def test_a_forked_child_makes_its_own_workers(two_blas_threads):
    stacked_matmul(np.ones((4, 2, 3)), np.ones((4, 3, 2)))   # the parent's pool exists before the fork
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_product_in_a_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child waited on a worker thread it does not have")
    assert child.exitcode == 0 and queue.get(timeout=5) == 4 * 2 * 2 * 3


def test_info_says_how_a_stack_runs_and_without_threadpoolctl_it_is_numpys_matmul(monkeypatch):
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert module.describe() == "run in 2 shares at once, one per core"
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert module.describe() == "run one at a time (BLAS has 1 thread)"
    monkeypatch.setattr(module, "ThreadpoolController", None)
    assert "threadpoolctl is not installed" in module.describe()
    calls = products_taken(monkeypatch)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        stacked_matmul(np.ones((6, 2, 2)), np.ones((6, 2, 2)))
    assert calls == [6]
