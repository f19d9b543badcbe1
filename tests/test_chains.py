"""AIS's and RAISE's chains split over threads (pgmdsl.evaluate.chains) and the ranges they split into."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import pgmdsl
from pgmdsl.errors import DSLError
from pgmdsl.evaluate import ais, raise_log_likelihood
from pgmdsl.evaluate import chains
from pgmdsl.evaluate.ais import BLOCK, base_model, forward_weights
from pgmdsl.ranges import split
from rbms import binary_rows, random_rbm


@pytest.mark.parametrize("total, parts, block", [(100, 2, 10), (25, 2, 10), (7, 3, 1), (3, 5, 1), (95, 4, 10)])
def test_split_covers_the_indices_in_whole_blocks_of_near_equal_sizes(total, parts, block):
    spans = split(total, parts, block)
    assert [i for span in spans for i in span] == list(range(total))
    assert len(spans) == min(parts, -(-total // block))
    assert all(span.start % block == 0 for span in spans)
    whole = [len(span) // block for span in spans[:-1]] + [-(-len(spans[-1]) // block)]
    assert max(whole) - min(whole) <= 1


@pytest.mark.parametrize("threads", [2, 3, np.int64(2)])
def test_threaded_ais_gives_every_chain_its_one_batch_weights(threads):
    """Chains in threads of whole blocks draw what they draw in one batch (float64: equal to rounding)."""
    c, data = random_rbm(), binary_rows(60)
    schedule = np.linspace(0, 1, 40)
    one = ais(c, data, runs=45, schedule=schedule, seed=3, progress=False, threads=1)
    split_up = ais(c, data, runs=45, schedule=schedule, seed=3, progress=False, threads=threads)
    np.testing.assert_allclose(split_up.log_weights, one.log_weights, rtol=0, atol=1e-12)
    assert split_up.log_z == pytest.approx(one.log_z, abs=1e-12)


def test_threaded_raise_gives_every_chain_its_one_batch_weights():
    c, data = random_rbm(), binary_rows(60)
    rows = binary_rows(3, seed=5)
    schedule = np.linspace(0, 1, 30)
    one = raise_log_likelihood(c, rows, base=data, runs=10, schedule=schedule, seed=2, progress=False, threads=1)
    split_up = raise_log_likelihood(c, rows, base=data, runs=10, schedule=schedule, seed=2, progress=False,
                                    threads=2)
    np.testing.assert_allclose(split_up.log_weights, one.log_weights, rtol=0, atol=1e-12)


def test_threaded_weights_is_the_estimator_over_the_concatenated_spans():
    c, data = random_rbm(), binary_rows(60)
    bases, betas = base_model(c, {"v": data}), np.linspace(0, 1, 20)
    got = chains.threaded_weights(forward_weights, c, bases, betas, 4, 35, {}, BLOCK, threads=2)
    apart = [forward_weights(c, bases, betas, 4, span, {}) for span in (range(0, 20), range(20, 35))]
    np.testing.assert_array_equal(got, np.concatenate(apart))


def test_threads_follow_blas_and_the_share_size(monkeypatch):
    large = pgmdsl.load("rbm", nv=784, nh=500).compile(dtype="float32")
    monkeypatch.setattr(chains, "blas_threads", lambda: 4)
    # a row is 1,284 float32 units: 25 chains a thread would be 128,400 bytes, under SHARE_BYTES; 33 are over
    assert chains.chain_threads(large, 100, BLOCK) == 3
    assert chains.chain_threads(large, 20, BLOCK) == 1  # 10 chains a thread are too few
    assert chains.chain_threads(large, 1000, BLOCK) == 4
    assert chains.chain_threads(random_rbm(), 1000, BLOCK) == 1  # a small model's state: one batch
    monkeypatch.setattr(chains, "blas_threads", lambda: 1)
    assert chains.chain_threads(large, 1000, BLOCK) == 1


def test_blas_threads_follows_threadpool_limits():
    with threadpool_limits(1):
        assert chains.blas_threads() == 1


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_a_thread_count_that_is_no_whole_number_is_one_line(threads):
    with pytest.raises(DSLError, match="threads must be a whole number >= 1"):
        ais(random_rbm(), binary_rows(20), runs=10, schedule=np.linspace(0, 1, 5), progress=False, threads=threads)


def test_one_failing_share_stops_the_others_and_its_error_is_raised():
    seen = []

    def estimator(compiled, bases, betas, seed, span, rows, progress, stop):
        if span.start == 0:
            raise ValueError("share failed")
        seen.append(stop.wait(10))  # True once told to stop, False after 10 s
        return np.zeros(len(span))

    with pytest.raises(ValueError, match="share failed"):
        chains.threaded_weights(estimator, random_rbm(), {}, np.linspace(0, 1, 3), 0, 40, {}, BLOCK, threads=2)
    assert seen == [True]


def test_a_stopped_estimator_ends_before_its_first_distribution():
    import threading

    c, data = random_rbm(), binary_rows(60)
    stop = threading.Event()
    stop.set()
    bases = base_model(c, {"v": data})
    assert not forward_weights(c, bases, np.linspace(0, 1, 50), 0, range(10), {}, stop=stop).any()
