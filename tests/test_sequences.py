"""Sequence models: windows cut from sequences, generation frame by frame, and a CRBM that learns a motion."""

import numpy as np
import pytest

import pgmdsl
from pgmdsl.errors import DSLError
from pgmdsl.evaluate import conditional_log_likelihood, persistence_error, prediction_error


def crbm(nv=2, nh=3, order=2):
    return pgmdsl.load("crbm", nv=nv, nh=nh, order=order).compile(dtype="float64")


def test_windows_put_the_most_recent_frame_first():
    c = crbm()
    sequence = np.arange(10.0).reshape(5, 2)  # frame t is (2t, 2t + 1)
    w = c.windows(sequence)
    np.testing.assert_array_equal(w["v"], sequence[2:])
    np.testing.assert_array_equal(w["past"][:, 0], sequence[1:4])  # one step back
    np.testing.assert_array_equal(w["past"][:, 1], sequence[0:3])  # two steps back
    several = c.windows(np.stack([sequence, sequence + 100]))
    assert several["v"].shape == (6, 2) and several["past"].shape == (6, 2, 2)
    ragged = c.windows([sequence, sequence[:3] + 100])
    np.testing.assert_array_equal(ragged["v"][-1], [104.0, 105.0])
    assert len(ragged["v"]) == 4


def test_windows_refuse_what_is_not_a_sequence_for_the_model():
    c = crbm()
    with pytest.raises(DSLError, match="a window needs order \\+ 1 = 3"):
        c.windows(np.zeros((2, 2)))
    with pytest.raises(DSLError, match="frames of shape \\(3,\\); model crbm takes frames of shape \\(2,\\)"):
        c.windows(np.zeros((5, 3)))
    with pytest.raises(DSLError, match="NaN"):
        c.windows(np.full((5, 2), np.nan))
    with pytest.raises(DSLError, match="not a sequence model"):
        pgmdsl.load("rbm", nv=4, nh=2).compile().windows(np.zeros((5, 4)))


def test_generation_with_mean_frames_is_the_models_linear_recursion():
    """With no hidden coupling (W = B = 0), the visible mean is a + sigma * sum_t A[t]^T past[t]: generation
    with mean frames must be exactly that recursion, each frame fed back as the newest past frame."""
    c = crbm()
    rng = np.random.default_rng(0)
    c.params["W"][...] = 0
    c.params["B"][...] = 0
    A, a = rng.normal(0, 0.4, (2, 2, 2)), rng.normal(0, 0.1, 2)
    c.params["A"][...], c.params["a"][...], c.params["log_sigma"][...] = A, a, np.log([0.5, 2.0])
    sigma = np.array([0.5, 2.0])
    seed = rng.normal(size=(3, 2))
    got = c.generate(5, seed, gibbs_steps=3)
    frames = list(seed)
    for _ in range(5):
        frames.append(a + sigma * (frames[-1] @ A[0] + frames[-2] @ A[1]))
    np.testing.assert_allclose(got, np.array(frames[3:]), rtol=1e-12)
    batch = c.generate(5, np.stack([seed, seed]), gibbs_steps=3)
    assert batch.shape == (2, 5, 2)
    np.testing.assert_allclose(batch[1], got, rtol=1e-12)
    sampled = c.generate(4, seed, mean_field=False, seed=1)
    assert sampled.shape == (4, 2) and not np.allclose(sampled, got[:4])


def test_generate_refuses_bad_seeds():
    c = crbm()
    with pytest.raises(DSLError, match="T >= order = 2"):
        c.generate(3, np.zeros((1, 2)))
    with pytest.raises(DSLError, match="positive integer"):
        c.generate(0, np.zeros((2, 2)))


def test_the_oscillators_are_standardised_and_their_period_of_20_dominates():
    x = pgmdsl.datasets.oscillators(sequences=4, frames=200, channels=3, seed=1)
    assert x.shape == (4, 200, 3)
    np.testing.assert_allclose(x.reshape(-1, 3).mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(x.reshape(-1, 3).std(0), 1)
    assert dominant_period(x[0]) == pytest.approx(20, abs=1)
    with pytest.raises(DSLError, match="frames must be an integer >= 2"):
        pgmdsl.datasets.oscillators(frames=1)


def dominant_period(frames: np.ndarray) -> float:
    """The period (in frames) of the highest peak of the spectrum summed over channels."""
    power = (np.abs(np.fft.rfft(frames - frames.mean(0), axis=0)) ** 2).sum(1)
    return len(frames) / (np.argmax(power[1:]) + 1)


def test_a_crbm_learns_the_motion_generates_it_and_beats_the_independent_baseline():
    """Trained on oscillators, generation from a held-out seed stays bounded for 300 frames and keeps the data's
    period; the exact conditional log-likelihood of held-out windows beats a per-channel Gaussian."""
    x = pgmdsl.datasets.oscillators(sequences=6, frames=300, channels=4, seed=2)
    c = pgmdsl.load("crbm", nv=4, nh=8, order=3).compile(dtype="float64")
    rates = {"W": 0.01, "A": 0.01, "B": 0.01, "a": 0.01, "b": 0.01, "log_sigma": 0.001}
    c.fit(c.windows(x[:5]), epochs=60, batch_size=100, lr=rates, momentum=0.9, seed=0, verbose=0)
    generated = c.generate(300, x[5, :3], gibbs_steps=20)
    assert np.all(np.isfinite(generated)) and np.abs(generated).max() < 4
    assert generated.std(0).min() > 0.3  # it keeps moving
    assert dominant_period(generated) == pytest.approx(20, rel=0.1)
    held = {k: v[:60] for k, v in c.windows(x[5:]).items()}
    model = conditional_log_likelihood(c, held)
    train = x[:5].reshape(-1, 4)
    baseline = -0.5 * (((held["v"] - train.mean(0)) / train.std(0)) ** 2 + np.log(2 * np.pi * train.var(0))).sum(1)
    assert model.mean() > baseline.mean() + 3
    error = prediction_error(c, held, gibbs_steps=20)
    assert error.shape == (60,) and error.mean() < persistence_error(c, held).mean()


def test_prediction_error_of_the_linear_recursion_is_exact():
    c = crbm()
    c.params["W"][...] = 0
    c.params["B"][...] = 0
    c.params["A"][...] = np.random.default_rng(1).normal(0, 0.3, (2, 2, 2))
    w = c.windows(np.random.default_rng(2).normal(size=(6, 2)))
    A = np.asarray(c.params["A"])
    expected = ((np.einsum("rtp,tpi->ri", w["past"], A) - w["v"]) ** 2).mean(1)
    np.testing.assert_allclose(prediction_error(c, w, gibbs_steps=2), expected, rtol=1e-12)
    np.testing.assert_allclose(persistence_error(c, w), ((w["past"][:, 0] - w["v"]) ** 2).mean(1))
    with pytest.raises(DSLError, match="needs windows"):
        prediction_error(c, {"v": w["v"]})
