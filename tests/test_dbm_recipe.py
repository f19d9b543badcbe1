"""The DBM recipe (runtime.recipes.dbm): the chain read from the energy, the doubled pretraining against a
hand-written two-copy RBM, the halving and averaging that compose it, the doubled mean-field start, the joint
schedule's options, and `pgmdsl train` running all of it."""

import json

import numpy as np
import pytest

import pgmdsl
from pgmdsl import cli
from pgmdsl.errors import DSLError
from pgmdsl.runtime import recipes
from pgmdsl.runtime.options import options
from pgmdsl.runtime.recipes import dbm

# A DBM of the user's own: other names, its parameters in another order, a coupling written before the biases.
MINE = """model mine(n: int = 5, m: int = 4, q: int = 3)
visible x[n]: binary
hidden  top[q]: binary
hidden  mid[m]: binary
param U[m, q] ~ normal(0, 0.1)
param V[n, m] ~ normal(0, 0.1)
param c[q] = 0
param d[m] = 0
param e[n] = 0
energy = -mid[j]*U[j,k]*top[k] - x[i]*V[i,j]*mid[j] - e[i]*x[i] - d[j]*mid[j] - c[k]*top[k]
"""


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def compiled(name="dbm", seed=0, **sizes):
    c = pgmdsl.load(name, **sizes).compile(dtype="float64", seed=seed)
    rng = np.random.default_rng(seed + 1)
    for key, value in c.params.items():
        c.params[key] = rng.normal(0, 0.5, value.shape)
    return c


def test_the_chain_is_read_from_the_energy_whatever_the_names():
    assert dbm.chain(pgmdsl.load("dbm")) == dbm.Chain(("v", "h1", "h2"), (("W1",), ("W2",)), (("a",), ("b1",), ("b2",)))
    assert dbm.chain(pgmdsl.load("dbm3")).layers == ("v", "h1", "h2", "h3")
    assert dbm.chain(pgmdsl.parse(MINE)) == dbm.Chain(("x", "mid", "top"), (("V",), ("U",)), (("e",), ("d",), ("c",)))


@pytest.mark.parametrize("name, why", [
    ("rbm", "it is an RBM"), ("bm", "sampled as blocks"), ("crbm", "no input layers"), ("dbn", "is a stack"),
    ("class_rbm", "one visible layer"),
])
def test_models_that_are_not_a_dbm_chain_are_refused_in_one_line(name, why):
    with pytest.raises(DSLError, match=why):
        dbm.chain(pgmdsl.load(name))


def test_a_loop_of_layers_or_a_parameter_across_the_chain_is_refused():
    loop = MINE.replace("- c[k]*top[k]", "- c[k]*top[k] - x[i]*T[i,k]*top[k]").replace(
        "param c[q] = 0", "param c[q] = 0\nparam T[n, q] = 0")
    with pytest.raises(DSLError, match="couples to"):
        dbm.chain(pgmdsl.parse(loop))


def test_recipes_are_chosen_by_structure_and_named_ones_checked():
    assert recipes.choose(pgmdsl.load("dbm")) is recipes.DBM
    assert recipes.choose(pgmdsl.parse(MINE)) is recipes.DBM
    assert recipes.choose(pgmdsl.load("dbn")) is recipes.GREEDY
    assert recipes.choose(pgmdsl.load("rbm")) is recipes.DEFAULT
    assert recipes.choose(pgmdsl.load("dbm"), "joint") is recipes.JOINT
    with pytest.raises(DSLError, match="--recipe dbm: .*RBM"):
        recipes.choose(pgmdsl.load("rbm"), "dbm")
    with pytest.raises(DSLError, match="--recipe greedy: .*stacks"):
        recipes.choose(pgmdsl.load("dbm"), "greedy")
    with pytest.raises(DSLError, match="no such recipe"):
        recipes.choose(pgmdsl.load("dbm"), "nope")


def test_joint_options_are_the_papers_schedule_and_valid_training_options():
    chosen = dbm.joint_options(pgmdsl.load("dbm3"), {"epochs": 3})
    assert chosen["sparsity_target"] == {"h1": 0.2, "h2": 0.1, "h3": 0.1} and chosen["epochs"] == 3
    o = options(**chosen)
    assert (o.method, o.k, o.chains, o.mean_field_steps, o.weight_decay) == ("pcd", 5, 100, 10, 2e-4)
    assert o.momentum_at(0) == 0.5 and o.momentum_at(4) == 0.5 and o.momentum_at(5) == 0.9
    assert o.learning_rate(0, 1) == 1e-3 and o.learning_rate(10**9, 1) == 1e-4
    assert o.sparsity_of("h2") == 0.1 and o.sparsity_of("v") is None


def test_a_sparsity_target_for_a_layer_without_a_bias_is_refused():
    c = compiled(nv=4, n1=3, n2=2)
    with pytest.raises(DSLError, match="sparsity_target names v"):
        c.fit(np.zeros((4, 4)), sparsity_target={"v": 0.1}, epochs=1)


def test_the_mean_field_start_is_the_doubled_bottom_up_pass():
    c = compiled(nv=5, n1=4, n2=3)
    p = c.params
    v = np.random.default_rng(3).integers(0, 2, (6, 5)).astype(float)
    start = dbm.mean_field_start(dbm.chain(c.model))(c, {"v": v})
    mu1 = sigmoid(2 * v @ p["W1"] + p["b1"])
    np.testing.assert_allclose(start["h1"], mu1, rtol=1e-12)
    np.testing.assert_allclose(start["h2"], sigmoid(mu1 @ p["W2"] + p["b2"]), rtol=1e-12)


def two_copy_rbm_step(W, a, b, rows, rng, lr, copies_below: bool):
    """One CD-1 step of an RBM with one layer present twice, tied (by hand): the bottom RBM has two copies of its
    visible layer (copies_below), the top one two of its hidden layer, both copies given the same values."""
    up = 2.0 if copies_below else 1.0
    down = 1.0 if copies_below else 2.0
    positive = sigmoid(up * rows @ W + b)
    drawn = (rng.random(positive.shape) < positive).astype(float)
    reconstruction = sigmoid(down * drawn @ W.T + a)
    negative = sigmoid(up * reconstruction @ W + b)
    n = len(rows)
    return (W + lr * (rows.T @ positive - reconstruction.T @ negative) / n,
            a + lr * (rows - reconstruction).sum(0) / n, b + lr * (positive - negative).sum(0) / n)


@pytest.mark.parametrize("pair, copies_below", [(0, True), (1, False)])
def test_pretraining_a_pair_is_cd1_of_the_rbm_with_a_doubled_layer(pair, copies_below):
    c = compiled(nv=5, n1=4, n2=3)
    structure = dbm.chain(c.model)
    lower, upper = structure.layers[pair], structure.layers[pair + 1]
    weight, below, above = ("W1", "a", "b1") if pair == 0 else ("W2", "b1", "b2")
    rows = np.random.default_rng(4).random((7, c.layers[lower]["shape"][0]))
    expected = two_copy_rbm_step(c.params[weight].copy(), c.params[below].copy(), c.params[above].copy(), rows,
                                 np.random.default_rng(9), 0.1, copies_below)
    trainer = dbm.PairPretraining(c, structure, pair, 2.0 if copies_below else 1.0, 1.0 if copies_below else 2.0,
                                  {"weight_decay": 0.0, "method": "cd"}, np.random.default_rng(9))
    trainer.update(rows, 0.1, momentum=0.0)
    for name, value in zip((weight, below, above), expected):
        np.testing.assert_allclose(c.params[name], value, rtol=1e-12, atol=1e-15)
    assert (lower, upper) == structure.layers[pair:pair + 2]


def test_composing_halves_the_middle_couplings_and_averages_shared_biases():
    c = compiled("dbm3", nv=4, n1=3, n2=3, n3=2)
    before = {k: v.copy() for k, v in c.params.items()}
    histories = dbm.pretrain(c, np.ones((5, 4)), epochs=1, lr=0.0)  # nothing learnt: only the composition acts
    assert len(histories) == 3 and all(len(h) == 1 for h in histories)
    np.testing.assert_array_equal(c.params["W1"], before["W1"])
    np.testing.assert_array_equal(c.params["W2"], before["W2"] / 2)
    np.testing.assert_array_equal(c.params["W3"], before["W3"])
    for name in ("a", "b1", "b2", "b3"):
        np.testing.assert_allclose(c.params[name], before[name], rtol=1e-15)


def test_pretraining_options_are_checked():
    with pytest.raises(DSLError, match="unknown option k"):
        dbm.pretrain(compiled(nv=4, n1=3, n2=2), np.ones((3, 4)), k=3)


def test_pretraining_then_joint_training_beats_joint_training_from_random_weights():
    """The point of the recipe, at a size where log p(v) is exact: same data, schedule and seed."""
    from pgmdsl.evaluate import exact_log_z, log_likelihood

    rng = np.random.default_rng(0)
    prototypes = rng.random((4, 12)) < 0.5
    data = np.where(rng.random((300, 12)) < 0.05, 1 - prototypes[rng.integers(0, 4, 300)], prototypes[rng.integers(0, 4, 300)])
    data = data.astype(float)
    scores = {}
    for pretraining in (None, False):
        c = pgmdsl.load("dbm", nv=12, n1=8, n2=4).compile(dtype="float64", seed=0)
        dbm.train(c, data, pretraining=pretraining or ({"epochs": 20} if pretraining is None else False),
                  epochs=10, verbose=0)
        scores[pretraining is None] = float(np.mean(log_likelihood(c, data, exact_log_z(c))))
    assert scores[True] > scores[False] + 1.0, scores


def test_train_cli_runs_the_dbm_recipe(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "dbm", "--data", "digits-binary", "--set", "n1=8", "--set", "n2=4", "--epochs", "2",
                     "--pretrain-epochs", "2", "--ais-runs", "0", "-o", str(run)]) == 0
    out = capsys.readouterr().out
    assert "recipe 'dbm'" in out and "pcd-5" in out
    assert "pretrained pair 1 of 2: 2 epochs" in out and "pretrained pair 2 of 2" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["recipe"] == "dbm" and len(metrics["pretraining"]) == 2
    assert metrics["options"]["sparsity_target"] == {"h1": 0.2, "h2": 0.1}


def test_train_cli_joint_recipe_skips_pretraining_and_rbms_refuse_it(tmp_path, capsys):
    assert cli.main(["train", "dbm", "--data", "digits-binary", "--set", "n1=8", "--set", "n2=4", "--epochs", "1",
                     "--recipe", "joint", "--ais-runs", "0", "-o", str(tmp_path / "a")]) == 0
    assert "pretrained" not in capsys.readouterr().out
    assert cli.main(["train", "rbm", "--data", "digits-binary", "--pretrain-epochs", "3", "-o",
                     str(tmp_path / "b")]) == 1
    assert "recipe 'default' has no pretraining" in capsys.readouterr().err


@pytest.mark.parametrize("name, sizes", [("dbm", dict(nv=4, n1=3, n2=2)), ("dbm3", dict(nv=3, n1=2, n2=3, n3=2))])
def test_after_the_recipe_the_bound_is_below_the_brute_force_log_likelihood_on_every_row(name, sizes):
    """Every joint state enumerated with the hand-written energies of tests/exact.py: log p(v) per visible state."""
    import exact
    from pgmdsl.evaluate import exact_log_z, lower_bound

    c = pgmdsl.load(name, **sizes).compile(dtype="float64", seed=2)
    rng = np.random.default_rng(2)
    rows = (rng.random((200, sizes["nv"])) < np.linspace(0.2, 0.8, sizes["nv"])).astype(float)
    dbm.train(c, rows, pretraining={"epochs": 5, "batch_size": 20}, epochs=5, batch_size=20, lr=0.05, verbose=0)
    params = {k: np.asarray(v) for k, v in c.params.items()}
    states = exact.product_state({n: exact.layer_states(info) for n, info in c.layers.items()})
    log_joint = -exact.ENERGIES[name](params, states)
    visible = exact.layer_states(c.layers["v"])
    keys = [tuple(row) for row in states["v"]]
    log_p = np.array([np.logaddexp.reduce(log_joint[[k == tuple(v) for k in keys]]) for v in visible])
    log_p -= np.logaddexp.reduce(log_joint)
    bound = lower_bound(c, visible, exact_log_z(c))
    assert np.all(bound <= log_p + 1e-10) and np.all(bound > log_p - 2.0), (bound, log_p)


def test_pretraining_applies_data_dependent_initialisers_and_joint_training_keeps_what_it_learnt():
    text = MINE.replace("param e[n] = 0", "param e[n] = logit_mean(x)")
    c = pgmdsl.parse(text, "mine.dgm").compile(dtype="float64")
    rows = (np.random.default_rng(1).random((50, 5)) < [0.1, 0.3, 0.5, 0.7, 0.9]).astype(float)
    dbm.pretrain(c, rows, epochs=1, lr=1e-12)
    means = rows.mean(0)
    np.testing.assert_allclose(c.params["e"], np.log(means / (1 - means)), rtol=1e-6)
    before = c.params["e"].copy()
    c.fit(rows, epochs=1, lr=1e-12, verbose=0)
    np.testing.assert_allclose(c.params["e"], before, atol=1e-9)


def test_a_second_fit_continues_instead_of_resetting_data_dependent_parameters():
    c = pgmdsl.load("rbm", nv=4, nh=2).compile(dtype="float64")
    rows = (np.random.default_rng(0).random((40, 4)) < 0.5).astype(float)
    c.fit(rows, epochs=3, lr=0.5, verbose=0)
    after = c.params["a"].copy()
    c.fit(rows, epochs=1, lr=1e-12, verbose=0)
    np.testing.assert_allclose(c.params["a"], after, atol=1e-9)


def test_mean_field_everywhere_starts_a_dbm_chain_from_the_doubled_bottom_up_pass():
    """The evaluation's bound and the training monitor start where the recipe's data phase does (a start of 0.5
    lets a wide top layer swamp h1); models that are not DBM chains keep 0.5."""
    from pgmdsl.evaluate.bound import mean_field

    c = compiled(nv=5, n1=4, n2=3)
    v = np.random.default_rng(5).integers(0, 2, (6, 5)).astype(float)
    started = mean_field(c, {"v": v}, steps=0)
    expected = dbm.bottom_up(c, dbm.chain(c.model), v)
    for name in ("h1", "h2"):
        np.testing.assert_allclose(started[name], expected[name], rtol=1e-12)
    assert dbm.start_means(compiled("rbm", nv=4, nh=3), {"v": v[:, :4]}) == {}


def test_pretraining_by_pcd_is_pcd1_of_the_doubled_rbm_with_chains_from_the_first_minibatch():
    c = compiled(nv=5, n1=4, n2=3)
    W, a, b = (c.params[k].copy() for k in ("W1", "a", "b1"))
    rows = np.random.default_rng(4).random((7, 5))
    rng = np.random.default_rng(9)
    positive = sigmoid(2 * rows @ W + b)
    rng.random(positive.shape)  # the positive phase's draw (its reconstruction is CD's, unused here)
    above = (rng.random(positive.shape) < sigmoid(2 * rows @ W + b)).astype(float)
    chains = (rng.random(rows.shape) < sigmoid(above @ W.T + a)).astype(float)
    negative = sigmoid(2 * chains @ W + b)
    expected = (W + 0.1 * (rows.T @ positive - chains.T @ negative) / 7, a + 0.1 * (rows - chains).sum(0) / 7,
                b + 0.1 * (positive - negative).sum(0) / 7)
    trainer = dbm.PairPretraining(c, dbm.chain(c.model), 0, 2.0, 1.0, {"weight_decay": 0.0, "method": "pcd"},
                                  np.random.default_rng(9))
    trainer.update(rows, 0.1, momentum=0.0)
    for name, value in zip(("W1", "a", "b1"), expected):
        np.testing.assert_allclose(c.params[name], value, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(trainer.chains, chains)
    with pytest.raises(DSLError, match="method must be 'cd' or 'pcd'"):
        dbm.PairPretraining(c, dbm.chain(c.model), 0, 2.0, 1.0, {"method": "pt"}, np.random.default_rng(0))
