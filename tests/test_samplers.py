"""Negative-phase samplers as registered objects (runtime.samplers), and parallel tempering on any model.

PT's chains at inverse temperature 1 are checked against the exact
distribution by enumeration, its exchange rule against a hand-computed
value, its training against the exact log-likelihood, its options and its
checkpointed state; a toy sampler registered by name trains with no change
to the trainer.
"""

import itertools

import numpy as np
import pytest

import pgmdsl
from pgmdsl.errors import DSLError
from pgmdsl.evaluate import exact_log_z, log_likelihood
from pgmdsl.runtime import samplers
from pgmdsl.runtime.fused import fused_reason
from pgmdsl.runtime.options import options as make_options
from pgmdsl.runtime.samplers.pt import ParallelTempering, ladder, swap_log_acceptance
from pgmdsl.runtime.train import Trainer

from exact import SMALLEST_SIZES
from archives import rewrite

BARS3 = pgmdsl.datasets.bars_and_stripes(3)  # 16 rows of 9 binary values


def rbm(nv=9, nh=6, seed=0):
    return pgmdsl.load("rbm", nv=nv, nh=nh).compile(dtype="float64", seed=seed)


def randomised(name, scale, seed):
    c = pgmdsl.load(name, **SMALLEST_SIZES[name]).compile(dtype="float64")
    rng = np.random.default_rng(seed)
    for param in c.params:
        c.params[param] = rng.normal(0, scale, c.params[param].shape)
    if "L" in c.params:  # a Boltzmann machine's lateral couplings: symmetric, no self-coupling
        for param in ("L", "M"):
            value = (c.params[param] + c.params[param].T) / 2
            np.fill_diagonal(value, 0)
            c.params[param] = value
    return c


def kept_distribution(c):
    """Every binary state of the kept layers, flattened, with its exact probability exp(-F) / Z."""
    layers = list(c.kept)
    widths = [int(np.prod(c.layers[n]["shape"])) for n in layers]
    states = np.array(list(itertools.product([0.0, 1.0], repeat=sum(widths))))
    split = np.split(states, np.cumsum(widths)[:-1], axis=1)
    free = np.asarray(c.free_energy({n: s.reshape((-1,) + tuple(c.layers[n]["shape"])) for n, s in zip(layers, split)}))
    logp = -free - np.logaddexp.reduce(-free)
    return states, np.exp(logp)


def total_variation(c, sample, states, p):
    rows = np.concatenate([np.asarray(sample[n]).reshape(len(sample[n]), -1) for n in c.kept], axis=1)
    code = rows @ (2.0 ** np.arange(rows.shape[1])[::-1])
    table = states @ (2.0 ** np.arange(states.shape[1])[::-1])
    counts = np.array([np.sum(code == value) for value in table])
    assert counts.sum() == len(rows)  # every sampled state is a binary state
    return 0.5 * np.abs(counts / len(rows) - p).sum()


def sampling_noise(p, n, seed=0):
    """The 99th percentile of the total variation of n exact draws: what a perfect sampler would show."""
    rng = np.random.default_rng(seed)
    return float(np.quantile([0.5 * np.abs(rng.multinomial(n, p) / n - p).sum() for _ in range(300)], 0.99))


# ---- (a) the chains at beta = 1 sample the model ----

def test_pt_crosses_between_modes_that_gibbs_sampling_does_not():
    """A bimodal RBM (8 visible units, one hidden unit, a barrier of four units): every chain starts all-off.

    Plain Gibbs stays in the all-off mode (a third of the mass); PT's beta = 1
    chains match the enumerated p(v) to within what exact draws would show.
    """
    c = rbm(nv=8, nh=1)
    c.params["W"][...], c.params["a"][...], c.params["b"][...] = 6.0, -3.0, -21.0
    states, p = kept_distribution(c)
    n = 4000
    start = {"v": np.zeros((n, 8))}
    gibbs = c.sample(n, steps=200, init=start, seed=1)
    tempered = c.sample(n, steps=200, init=start, seed=1, method="pt")
    assert total_variation(c, gibbs, states, p) > 0.5
    assert total_variation(c, tempered, states, p) < 1.2 * sampling_noise(p, n)
    # the summed-out hidden unit is drawn given v: its frequency is the exact p(h = 1)
    h_on = np.sum(p * (1 / (1 + np.exp(-(states @ c.params["W"][:, 0] + c.params["b"][0])))))
    assert abs(tempered["h"].mean() - h_on) < 0.03


@pytest.mark.parametrize("name", ["rbm", "bm", "dbm"])
def test_pt_chains_at_beta_one_have_the_exact_distribution(name):
    """RBM (h summed out), Boltzmann machine (nothing summed: F = beta E) and DBM (h1 summed, h2 kept)."""
    c = randomised(name, 1.5, seed=3)
    states, p = kept_distribution(c)
    n = 3000
    sample = c.sample(n, steps=60, seed=2, method="pt", temperatures=5)
    assert total_variation(c, sample, states, p) < 1.2 * sampling_noise(p, n)


# ---- (b) the exchange rule ----

def test_swap_acceptance_equals_the_hand_computed_free_energies():
    c = randomised("rbm", 1.0, seed=5)
    W, a, b = (np.asarray(c.params[k]) for k in "Wab")
    x = np.array([[1.0, 0.0, 1.0, 1.0]])
    y = np.array([[0.0, 1.0, 1.0, 0.0]])

    def free(beta, v):  # F_beta(v) = -beta a.v - sum_j log(1 + exp(beta (b_j + v.W_j)))
        return float(-beta * (v @ a)[0] - np.sum(np.log1p(np.exp(beta * (b + v @ W)))))

    by_hand = free(1.0, x) + free(0.4, y) - free(1.0, y) - free(0.4, x)
    computed = swap_log_acceptance(c, {"v": x}, {"v": y}, [1.0, 0.4])
    np.testing.assert_allclose(computed, [by_hand], rtol=1e-12)


def test_swap_acceptance_of_a_model_that_sums_nothing_is_beta_times_energy():
    c = randomised("bm", 1.0, seed=6)
    rng = np.random.default_rng(0)
    x = {k: (rng.random((5,) + tuple(c.layers[k]["shape"])) < 0.5).astype(float) for k in c.kept}
    y = {k: (rng.random((5,) + tuple(c.layers[k]["shape"])) < 0.5).astype(float) for k in c.kept}
    expected = (1.0 - 0.3) * (np.asarray(c.energy(x)) - np.asarray(c.energy(y)))
    np.testing.assert_allclose(swap_log_acceptance(c, x, y, [1.0, 0.3]), expected, rtol=1e-10, atol=1e-12)


def _standalone(c, count, temperatures, seed=0):
    rng = np.random.default_rng(seed)
    state = lambda rows: {"v": (rng.random((rows, c.layers["v"]["shape"][0])) < 0.5).astype(float)}  # noqa: E731
    o = make_options(method="pt", chains=count, batch_size=count, temperatures=temperatures)
    return ParallelTempering(samplers.Gibbs(c, (), state), o)


def test_exchanges_swap_exactly_the_accepted_rows_and_alternate_pairs():
    c = randomised("rbm", 1.0, seed=7)
    sampler = _standalone(c, 50, 4)
    sampler._start()
    sampler.replicas["v"] = (np.random.default_rng(1).random(sampler.replicas["v"].shape) < 0.5).astype(float)
    before = sampler.replicas["v"].copy()
    betas = sampler.betas
    rng, copy = np.random.default_rng(3), np.random.default_rng(3)
    sampler._exchange(rng)  # round 0: pairs (0, 1) and (2, 3)
    for t in (0, 2):
        log_a = swap_log_acceptance(c, {"v": before[t]}, {"v": before[t + 1]}, betas[t:t + 2])
        accept = copy.random(50) < np.exp(np.minimum(log_a, 0))
        np.testing.assert_array_equal(sampler.replicas["v"][t], np.where(accept[:, None], before[t + 1], before[t]))
        np.testing.assert_array_equal(sampler.replicas["v"][t + 1], np.where(accept[:, None], before[t], before[t + 1]))
        assert sampler.accepted[t] == accept.sum()
    np.testing.assert_array_equal(sampler.attempted, [50, 0, 50])
    sampler.rounds = 1
    sampler._exchange(rng)
    np.testing.assert_array_equal(sampler.attempted, [50, 50, 50])


def test_the_default_ladder_is_ten_geometric_steps_from_one_to_a_tenth():
    betas = ladder()
    assert len(betas) == 10 and betas[0] == 1.0 and betas[-1] == pytest.approx(0.1)
    np.testing.assert_allclose(betas[1:] / betas[:-1], betas[1] / betas[0])
    np.testing.assert_array_equal(ladder((0.2, 0.5, 1.0)), [1.0, 0.5, 0.2])


# ---- (c) training ----

def test_fit_pt_climbs_the_exact_log_likelihood_and_reports_swap_rates():
    c = rbm()
    before = float(np.sum(log_likelihood(c, BARS3, exact_log_z(c))))
    history = c.fit(BARS3, method="pt", temperatures=4, epochs=600, batch_size=8, chains=16, lr=0.3, verbose=0,
                    seed=1)
    after = float(np.sum(log_likelihood(c, BARS3, exact_log_z(c))))
    # from about the uniform model's -99.8 towards the optimum -41.6 (14 patterns, two of them twice)
    assert before < -99 and after > -75, (before, after)
    rates = [history[-1][f"swap_rate_{t}"] for t in range(3)]
    assert all(0 < r <= 1 for r in rates) and history[-1]["swap_rate"] == pytest.approx(np.mean(rates))
    assert history.column("swap_rate")[0] > 0


def test_pt_takes_the_generic_update():
    trainer = Trainer(rbm(), BARS3, method="pt", batch_size=16, verbose=0)
    assert trainer.fused is None and fused_reason(trainer.c, trainer.options) == "pt: the generic update"
    assert trainer.why_generic == "pt: the generic update"


def test_every_temperature_of_a_chain_keeps_the_batch_inputs():
    """A conditional model: exchanges compare states given one input, so a column's inputs agree across temperatures."""
    c = pgmdsl.load("crbm", **SMALLEST_SIZES["crbm"]).compile(dtype="float64")
    rng = np.random.default_rng(0)
    data = {"past": rng.normal(size=(12, 2, 3)), "v": rng.normal(size=(12, 3))}
    trainer = Trainer(c, data, method="pt", temperatures=4, batch_size=6, chains=6, verbose=0, epochs=2)
    trainer.run()
    past = np.asarray(trainer.phase.replicas["past"])
    assert past.shape == (4, 6, 2, 3)
    np.testing.assert_array_equal(past, np.broadcast_to(past[0], past.shape))


def test_every_standard_model_trains_and_samples_with_pt():
    rng = np.random.default_rng(0)
    for name, sizes in SMALLEST_SIZES.items():
        c = pgmdsl.load(name, **sizes).compile(dtype="float64")
        data = {}
        for layer, info in c.layers.items():
            shape = (8,) + tuple(info["shape"])
            if info["role"] == "input" or (info["role"] == "visible" and info["unit"] == "gaussian"):
                data[layer] = rng.normal(size=shape)
            elif info["role"] == "visible" and info["unit"] == "onehot":
                data[layer] = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
            elif info["role"] == "visible":
                data[layer] = (rng.random(shape) < 0.5).astype(float)
        history = c.fit(data, method="pt", temperatures=3, epochs=1, batch_size=4, lr=0.01, verbose=0)
        assert np.isfinite(history[-1]["swap_rate"]), name
        assert all(np.all(np.isfinite(v)) for v in c.params.values()), name
        inputs = {n: v[:2] for n, v in data.items() if c.layers[n]["role"] == "input"}
        sample = c.sample(2, steps=2, method="pt", temperatures=3, clamp=inputs or None)
        assert set(sample) >= set(c.kept), name


# ---- (d) options ----

@pytest.mark.parametrize("value", [1, 0, 1001, True, "ten", 2.5, [0.5, 0.2], [1.0, 0.5, 0.7], [1.0, 0.0],
                                   [1.5, 1.0], [1.0], [1.0, float("nan")], [1.0, 1.0, 0.5], [[1.0, 0.5]]])
def test_a_bad_ladder_is_one_line(value):
    with pytest.raises(DSLError, match=r"^error: fit: temperatures must be None, a number of temperatures from 2 to 1000 "
                                       r"\(geometric from 1 to 0.1\) or the inverse temperatures"):
        make_options(method="pt", temperatures=value)


def test_ladders_that_are_accepted():
    assert make_options(method="pt", temperatures=np.array([0.25, 0.5, 1])).temperatures == (0.25, 0.5, 1.0)
    assert make_options(method="pt", temperatures=np.int64(4)).temperatures == 4
    assert make_options(method="pt").temperatures is None


def test_option_errors_name_the_methods():
    with pytest.raises(DSLError, match=r"fit: method must be 'cd', 'pcd' or 'pt', got 'tempering'"):
        rbm().fit(BARS3, method="tempering", verbose=0)
    with pytest.raises(DSLError, match=r"fit: temperatures= is for method='pt', not method='pcd'"):
        rbm().fit(BARS3, method="pcd", temperatures=10, verbose=0)
    with pytest.raises(DSLError, match=r"sample: temperatures must be None"):
        rbm().sample(3, steps=1, method="pt", temperatures=[0.5])
    with pytest.raises(DSLError, match=r"sample: method must be 'gibbs' or 'pt', got 'cd' \(it starts from the data\)"):
        rbm().sample(3, steps=1, method="cd")
    with pytest.raises(DSLError, match=r"sample: temperatures= is for method='pt', not method='gibbs'"):
        rbm().sample(3, steps=1, temperatures=4)
    with pytest.raises(DSLError, match=r"method 'pt' cannot clamp h: model rbm sums it out"):
        rbm().fit(BARS3, method="pt", clamp=("h",), verbose=0)
    with pytest.raises(DSLError, match=r"fit: 1000000000000 persistent chains at each of 10 temperatures .* at most"):
        Trainer(rbm(), BARS3, method="pt", chains=10**12, verbose=0)


# ---- (e) checkpoints ----

PT = dict(method="pt", temperatures=[1.0, 0.6, 0.3], batch_size=8, chains=5, momentum=0.5, lr=0.05, verbose=0)


def test_resuming_pt_gives_the_uninterrupted_run(tmp_path):
    straight = rbm()
    straight.fit(BARS3, epochs=4, checkpoint=tmp_path / "straight.npz", **PT)
    halfway = tmp_path / "halfway.npz"
    rbm().fit(BARS3, epochs=2, checkpoint=halfway, **PT)
    resumed = rbm()
    history = resumed.fit(BARS3, epochs=4, resume=halfway, **PT)
    for name in straight.params:
        np.testing.assert_array_equal(resumed.params[name], straight.params[name], err_msg=name)
    assert [row["swap_rate_1"] for row in history] == [row["swap_rate_1"] for row in straight.history]


def test_a_pair_no_exchange_tried_in_an_epoch_reports_nan_and_still_resumes(tmp_path):
    """Full batch: one round an epoch tries the pairs (0, 1), (2, 3) or the pair (1, 2), alternately."""
    path = tmp_path / "run.npz"
    options = dict(PT, temperatures=4, batch_size=16)
    history = rbm().fit(BARS3, epochs=2, checkpoint=path, **options)
    assert np.isnan(history[0]["swap_rate_1"]) and np.isfinite(history[0]["swap_rate_0"])
    assert np.isfinite(history[1]["swap_rate_1"]) and np.isnan(history[1]["swap_rate_0"])
    assert history[0]["swap_rate"] == pytest.approx((history[0]["swap_rate_0"] + history[0]["swap_rate_2"]) / 2)
    resumed = rbm().fit(BARS3, epochs=3, resume=path, **options)
    assert len(resumed) == 3 and np.isnan(resumed[0]["swap_rate_1"])




@pytest.mark.parametrize("change, message", [
    (lambda m: m.update({"train/sampler/chains/v": m["train/sampler/chains/v"][:, :2]}),
     r"sampler state 'train/sampler/chains/v' has shape \(3, 2, 9\); it keeps \(3, 5, 9\)"),
    (lambda m: m["train/sampler/chains/v"].__setitem__((0, 0, 0), np.nan),
     r"sampler state 'train/sampler/chains/v' holds NaN or infinite values"),
    (lambda m: m.pop("train/sampler/rounds"), r"sampler state 'train/sampler/rounds' is missing"),
    (lambda m: m.update({"train/sampler/accepted": np.array([-1, 2])}),
     r"sampler state 'train/sampler/accepted' must hold integers >= 0"),
    (lambda m: m.update({"train/sampler/accepted": m["train/sampler/attempted"] + 1}),
     r"sampler state 'train/sampler/accepted' exceeds the exchanges attempted"),
    (lambda m: m.update({"train/sampler/extra": np.zeros(2)}),
     r"sampler state 'train/sampler/extra' is not one of parallel tempering's state"),
    (lambda m: m.update({"train/sampler/beta": np.array([1.0, 0.5, 0.3])}),
     r"resume: temperatures were \[1.0, 0.5, 0.3\] in .*, now \[1.0, 0.6, 0.3\]"),
    (lambda m: m.update({"train/sampler/beta": np.array(["1.0", "0.6", "0.3"])}),
     r"sampler state 'train/sampler/beta' holds <U3 values, not numbers"),
])
def test_damaged_pt_state_is_refused_on_resume(tmp_path, change, message):
    path = tmp_path / "run.npz"
    rbm().fit(BARS3, epochs=1, checkpoint=path, **PT)
    rewrite(path, change)
    with pytest.raises(DSLError, match=message):
        rbm().fit(BARS3, epochs=2, resume=path, **PT)


def test_sampler_state_in_a_pcd_checkpoint_is_refused(tmp_path):
    path = tmp_path / "run.npz"
    options = dict(method="pcd", batch_size=8, verbose=0)
    rbm().fit(BARS3, epochs=1, checkpoint=path, **options)
    rewrite(path, lambda m: m.update({"train/sampler/chains/v": np.zeros((3, 8, 9))}))
    with pytest.raises(DSLError, match=r"'train/sampler/chains/v' is no part of method 'pcd''s state"):
        rbm().fit(BARS3, epochs=2, resume=path, **options)


# ---- (f) a sampler registered from outside ----

class Uniform(samplers.NegativePhase):
    """A toy negative phase: independent fair coins for every kept layer (the model of no parameters)."""

    calls = 0

    def model_phase(self, positive, rows, rng):
        type(self).calls += 1
        g = self.gibbs
        g.fill_means(positive)
        state = {n: (rng.random(positive[n].shape) < 0.5).astype(float) for n in g.kept}
        return g.fill_means(state)


class DataPhase(samplers.NegativePhase):
    """The data phase itself as the model phase: the gradient is zero."""

    def model_phase(self, positive, rows, rng):
        self.gibbs.fill_means(positive)
        return dict(positive)


@pytest.fixture
def registered():
    samplers.register("uniform", Uniform)
    samplers.register("data_phase", DataPhase)
    yield
    samplers.unregister("uniform")
    samplers.unregister("data_phase")


def test_a_registered_sampler_trains_without_trainer_changes(registered):
    c = rbm()
    start = {k: np.array(v) for k, v in c.params.items()}
    data = np.repeat([[1.0] * 4 + [0.0] * 5], 16, axis=0)  # four pixels always on, five always off
    Uniform.calls = 0
    c.fit(data, method="uniform", epochs=3, batch_size=8, lr=0.1, verbose=0)
    assert Uniform.calls == 3 * 2
    # the visible biases' gradient is the data's mean minus the coins' (about 1/2): up where pixels are on
    moved = np.asarray(c.params["a"]) - start["a"]
    np.testing.assert_array_equal(np.sign(moved), [1] * 4 + [-1] * 5)
    assert fused_reason(c, make_options(method="uniform")) == "uniform: the generic update"
    with pytest.raises(DSLError, match="sample: method must be 'gibbs' or 'pt', got 'uniform'"):
        c.sample(2, steps=1, method="uniform")


def test_the_data_phase_as_model_phase_changes_nothing(registered):
    c = rbm()
    start = {k: np.array(v) for k, v in c.params.items()}
    c.fit(BARS3, method="data_phase", epochs=2, batch_size=8, lr=0.1, verbose=0)
    for name, value in start.items():
        np.testing.assert_allclose(c.params[name], value, atol=1e-15)


def test_registering_checks_what_it_is_given():
    with pytest.raises(DSLError, match="must be a subclass of pgmdsl.runtime.samplers.NegativePhase"):
        samplers.register("broken", object)
    with pytest.raises(DSLError, match="a sampler's name is an identifier"):
        samplers.register("no name", Uniform)
    assert samplers.names()[:3] == ("cd", "pcd", "pt")


def test_pcd_trains_a_semi_restricted_bm_whose_visible_layer_is_swept_unit_by_unit():
    """Lateral visible couplings, none among the hidden units: the chains must keep v (a unit-wise sweep reads it)."""
    c = pgmdsl.parse("model semi(nv: int = 4, nh: int = 3)\nvisible v[nv]: binary\nhidden h[nh]: binary\n"
                     "param L[nv, nv] ~ normal(0, 0.01) : symmetric, zero_diagonal\nparam W[nv, nh] ~ normal(0, 0.01)\n"
                     "energy = -v[i]*W[i,j]*h[j] - v[i]*L[i,k]*v[k] / 2\n", "semi.dgm").compile()
    history = c.fit((np.random.default_rng(0).random((20, 4)) < 0.5).astype(float), method="pcd", epochs=2, verbose=0)
    assert len(history) == 2 and set(c.sample(3, steps=2)) >= {"v", "h"}
