"""pgmdsl.distributed on a LocalCluster of two worker processes: AIS, RAISE, sweeps and data-parallel training.

Each distributed result is checked against an independent answer: the
serial call with the same seed (which must not depend on how the chains
are split into tasks), exact log Z by enumeration, and the serial trainer's
update over the same per-shard random streams.
"""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import pgmdsl
from pgmdsl import distributed
from pgmdsl.cli import main
from pgmdsl.errors import DSLError
from pgmdsl.evaluate import ais, exact_log_z, log_likelihood, raise_log_likelihood
from pgmdsl.evaluate.ais import BLOCK, base_model, checked_schedule, forward_weights
from pgmdsl.runtime.checkpoint import load_trained
from pgmdsl.runtime.train import Trainer
from pgmdsl.runs import split
from rbms import binary_rows, random_rbm

dask_distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.local_cluster(2, dashboard_address=":0")
    with dask_distributed.Client(cluster) as connected:
        yield connected
    cluster.close()


def test_importing_pgmdsl_does_not_import_dask():
    code = "import sys, pgmdsl, pgmdsl.evaluate, pgmdsl.cli, pgmdsl.distributed; assert 'dask' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_dask_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(DSLError, match=r"pip install 'pgmdsl\[dask\]'"):
        distributed.require_dask()


def _worker_environment():
    import os

    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OPENBLAS_NUM_THREADS")


def test_local_workers_are_single_threaded_and_keep_mallocs_adaptive_threshold(client):
    """local_cluster's workers: one BLAS thread each, and no MALLOC_TRIM_THRESHOLD_ (Dask's nanny sets it,
    which makes every large temporary a fresh mapping)."""
    assert len(client.scheduler_info()["workers"]) == 2
    assert set(client.run(_worker_environment).values()) == {(None, "1")}


def test_a_chains_weights_do_not_depend_on_the_blocks_beside_it():
    """Block b of BLOCK chains draws from (seed, b): any split into whole blocks gives the serial weights."""
    c, data = random_rbm(), binary_rows(100)
    bases, betas = base_model(c, {"v": data}), checked_schedule(np.linspace(0, 1, 51), "a schedule")
    whole = forward_weights(c, bases, betas, 3, range(25), {})
    parts = np.concatenate([forward_weights(c, bases, betas, 3, chains, {})
                            for chains in (range(0, BLOCK), range(BLOCK, 25))])
    np.testing.assert_allclose(parts, whole, rtol=1e-12, atol=1e-12)
    assert [len(r) for r in distributed.split(25, 2, BLOCK)] in ([10, 15], [20, 5])
    with pytest.raises(ValueError, match="not at a block"):
        forward_weights(c, bases, betas, 3, range(5, 12), {})


def test_distributed_ais_equals_the_serial_estimate_for_one_and_two_workers(client):
    c, data = random_rbm(), binary_rows(200)
    schedule = np.linspace(0, 1, 401)
    serial = ais(c, data, runs=40, schedule=schedule, seed=5, progress=False)
    assert abs(serial.log_z - exact_log_z(c)) < 0.1  # and it is an estimate of the truth
    with dask_distributed.Client(dask_distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                                               dashboard_address=":0")) as one:
        alone = ais(c, data, runs=40, schedule=schedule, seed=5, progress=False, client=one)
        one.cluster.close()
    pair = ais(c, data, runs=40, schedule=schedule, seed=5, progress=False, client=client)
    for estimate in (alone, pair):
        np.testing.assert_allclose(estimate.log_weights, serial.log_weights, rtol=1e-12, atol=1e-12)
        assert estimate.log_z == pytest.approx(serial.log_z, rel=1e-13, abs=1e-12)
        assert estimate.log_z_base == serial.log_z_base


def test_distributed_exact_log_z_equals_the_serial_enumeration(client):
    """The numbered states split over the workers: the same log Z to rounding, also per input row and pooled."""
    c = random_rbm(nv=5, nh=7)
    assert abs(exact_log_z(c, client=client) - exact_log_z(c)) < 1e-12
    crbm = pgmdsl.load("crbm", nv=3, nh=3, order=1).compile(dtype="float64")
    inputs = {"past": np.random.default_rng(2).normal(size=(4, 1, 3))}
    np.testing.assert_allclose(exact_log_z(crbm, inputs, client=client), exact_log_z(crbm, inputs), rtol=0, atol=1e-12)
    conv = pgmdsl.load("conv_rbm", C=1, NV=4, K=2, NW=3, pool=2).compile(dtype="float64")
    assert abs(exact_log_z(conv, client=client, memory=4096) - exact_log_z(conv)) < 1e-12


def test_distributed_raise_equals_the_serial_estimate(client):
    c, data = random_rbm(seed=2), binary_rows(30, seed=3)
    rows, schedule = data[:5], np.linspace(0, 1, 201)
    serial = raise_log_likelihood(c, rows, base=data, runs=8, schedule=schedule, seed=1, progress=False)
    spread = raise_log_likelihood(c, rows, base=data, runs=8, schedule=schedule, seed=1, progress=False,
                                  client=client)
    np.testing.assert_allclose(spread.log_weights, serial.log_weights, rtol=1e-12, atol=1e-12)
    truth = log_likelihood(c, rows, exact_log_z(c))
    assert np.all(np.abs(serial.log_likelihood - truth) < 0.5)


@pytest.fixture(scope="module")
def sweep_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "rows.npy"
    np.save(path, binary_rows(120))
    return path


def test_sweep_writes_runs_and_results_resumes_and_reports_a_failure(client, sweep_data, tmp_path):
    grid = {"lr": [0.05], "k": [1, 0], "nh": [3], "epochs": [2]}  # k=0 is no sampler: that run fails
    rows = distributed.sweep("rbm", str(sweep_data), grid, tmp_path, seeds=[0, 1], client=client, ais_runs=0)
    assert len(rows) == 4
    failed = [row for row in rows if row["status"] == "failed"]
    assert len(failed) == 2 and all("k must be" in row["error"] for row in failed)
    assert rows[-1]["status"] == "failed" and rows[0]["status"] == "ok"  # the table: best first, failures last
    with open(tmp_path / "results.csv", newline="") as stream:
        table = list(csv.DictReader(stream))
    assert [row["run"] for row in table] == [row["run"] for row in rows]
    ok = [row for row in rows if row["status"] == "ok"]
    assert [r["validation_log_likelihood"] for r in ok] == sorted((r["validation_log_likelihood"] for r in ok),
                                                                   reverse=True)
    for row in ok:  # the run directory holds the model the row's log-likelihood is of: recompute it exactly
        run = tmp_path / row["run"]
        assert {"model.npz", "metrics.csv", "metrics.json", "evaluation.json", "result.json"} <= \
            {p.name for p in run.iterdir()}
        trained = load_trained(run / "model.npz")
        _, validation = split(np.load(sweep_data), 0.1, row["seed"])
        expected = np.mean(log_likelihood(trained, validation, exact_log_z(trained)))
        assert row["validation_log_likelihood"] == pytest.approx(expected, rel=1e-5)
    finished = {row["run"]: (tmp_path / row["run"] / "model.npz").stat().st_mtime_ns for row in ok}
    again = distributed.sweep("rbm", str(sweep_data), grid, tmp_path, seeds=[0, 1], client=client, ais_runs=0)
    assert {row["run"]: (tmp_path / row["run"] / "model.npz").stat().st_mtime_ns for row in ok} == finished
    assert [(r["run"], r["status"]) for r in again] == [(r["run"], r["status"]) for r in rows]


def test_sweep_command_on_a_running_scheduler(client, sweep_data, tmp_path, capsys):
    address = client.scheduler.address
    code = main(["sweep", "rbm", "--data", str(sweep_data), "--grid", "lr=0.02,0.1", "--grid", "nh=2",
                 "--grid", "epochs=1", "--scheduler", address, "--ais-runs", "0", "-o", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "results.csv" in out
    with open(tmp_path / "results.csv", newline="") as stream:
        table = list(csv.DictReader(stream))
    assert sorted(row["run"] for row in table) == ["lr-0.02_nh-2_epochs-1_seed-0", "lr-0.1_nh-2_epochs-1_seed-0"]
    assert all(row["status"] == "ok" for row in table)
    assert json.loads((tmp_path / table[0]["run"] / "result.json").read_text())["run"] == table[0]["run"]


def test_sweep_command_refuses_a_bad_grid(capsys, tmp_path):
    assert main(["sweep", "rbm", "--data", "bars", "--grid", "nh=a", "-o", str(tmp_path)]) == 1
    assert "must be a size" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_data_parallel_fit_matches_the_serial_update(client, method):
    """The driver's parameters after an epoch equal the serial trainer's steps over the same per-shard streams:
    each update the mean of the two shards' CD/PCD steps (equal shares of the minibatch and of the chains)."""
    data, seed, lr = binary_rows(40, seed=4), 7, 0.1
    spread = random_rbm(scale=0.1)
    reference = random_rbm(scale=0.1)
    Trainer(reference, data, seed=seed, fused=False).start()  # the serial fit's data-dependent initialisers
    history = spread.fit(data, method=method, k=1, epochs=2, batch_size=8, lr=lr, seed=seed, client=client)
    assert len(history) == 2 and np.isfinite(history[-1]["reconstruction"])
    shards = [data[:20], data[20:]]
    trainers = []
    for index, shard in enumerate(shards):
        trainer = Trainer(reference, shard, method=method, k=1, batch_size=4, seed=seed, fused=False, lr=lr)
        trainer.rng = trainer.sampler = np.random.default_rng([seed, index])
        trainers.append(trainer)
    for _ in range(2):
        orders = [trainer.rng.permutation(trainer.rows) for trainer in trainers]
        for update in range(5):
            steps = [trainer.generative_steps({"v": trainer.data["v"][order[4 * update:4 * update + 4]]}, lr)[0]
                     for trainer, order in zip(trainers, orders)]
            for name in reference.params:
                reference.params[name] += (steps[0][name] + steps[1][name]) / 2
    for name in reference.params:
        np.testing.assert_allclose(spread.params[name], reference.params[name], rtol=1e-10, atol=1e-12)
    # the History's reconstruction error is the serial trainer's measure: data -> hidden means -> visible means
    W, a, b = (spread.params[name] for name in ("W", "a", "b"))
    rebuilt = 1 / (1 + np.exp(-(1 / (1 + np.exp(-(data @ W + b))) @ W.T + a)))
    assert history[-1]["reconstruction"] == pytest.approx(np.mean((rebuilt - data) ** 2), rel=1e-12)


def test_data_parallel_fit_refuses_what_it_does_not_do(client):
    c = random_rbm()
    with pytest.raises(DSLError, match="clamp= is not supported"):
        c.fit(binary_rows(40), clamp=["v"], client=client)
    with pytest.raises(DSLError, match="must divide among"):
        c.fit(binary_rows(40), batch_size=5, client=client)


@pytest.mark.parametrize("method", ["pcd", "pt"])
def test_data_parallel_fit_resumes_exactly_from_its_checkpoint(client, tmp_path, method):
    """Two epochs, a checkpoint, two more by resume= give the parameters of four epochs in one run: the
    workers' chains, sampler states and streams come back to the same workers."""
    data, path = binary_rows(40, seed=4), tmp_path / "run.npz"
    settings = dict(method=method, k=1, batch_size=8, lr=0.1, seed=3, momentum=0.5, client=client)
    straight = random_rbm(scale=0.1)
    straight.fit(data, epochs=4, **settings)
    resumed = random_rbm(scale=0.1)
    resumed.fit(data, epochs=2, checkpoint=path, **settings)
    assert load_trained(path).checkpoint["training"]["epoch"] == 2
    again = random_rbm(scale=0.1)
    history = again.fit(data, epochs=4, resume=path, **settings)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    for name in straight.params:
        np.testing.assert_allclose(again.params[name], straight.params[name], rtol=1e-12, atol=1e-14)
    serial = random_rbm(scale=0.1)
    with pytest.raises(DSLError, match="data-parallel training on 2 workers: resume it with fit"):
        serial.fit(data, epochs=4, resume=path, **{k: v for k, v in settings.items() if k != "client"})
    serial_path = tmp_path / "serial.npz"
    random_rbm(scale=0.1).fit(data, epochs=1, checkpoint=serial_path,
                              **{k: v for k, v in settings.items() if k != "client"})
    with pytest.raises(DSLError, match="saved by the serial trainer"):
        random_rbm(scale=0.1).fit(data, epochs=2, resume=serial_path, **settings)


def test_data_parallel_fit_stops_on_divergence_and_keeps_its_last_good_checkpoint(client, tmp_path):
    path = tmp_path / "run.npz"
    c = random_rbm(scale=0.1)
    c.fit(binary_rows(40), epochs=1, batch_size=8, lr=0.1, checkpoint=path, client=client)
    good = {k: v.copy() for k, v in c.params.items()}
    with pytest.raises(DSLError, match=f"diverged in epoch 2 .*restored to the end of epoch 1; the last good "
                                       f"checkpoint is {path}"):
        c.fit(binary_rows(40), epochs=3, batch_size=8, lr=1e308, momentum=0.9, resume=path,
              client=client)
    for name, value in good.items():
        np.testing.assert_array_equal(c.params[name], value)
    assert load_trained(path).checkpoint["training"]["epoch"] == 1


def test_data_parallel_fit_reports_validation_and_monitors_and_stops_early(client):
    """The driver's epoch rows carry the serial trainer's held-out figures; a callback returning False stops."""
    c = random_rbm()
    seen = []

    def stop_after_two(compiled, row):
        seen.append(row["epoch"])
        return row["epoch"] < 2

    history = c.fit(binary_rows(40), validation=binary_rows(10, seed=3), monitor=[exact_log_likelihood_monitor],
                    callbacks=[stop_after_two], epochs=5, batch_size=10, client=client)
    assert seen == [1, 2] and len(history) == 2
    row = history[-1]
    assert {"free_energy_gap", "train_exact_log_likelihood_monitor", "validation_exact_log_likelihood_monitor"} <= set(row)
    held = binary_rows(10, seed=3)
    expected = float(np.mean(log_likelihood(c, held, exact_log_z(c))))
    assert abs(row["validation_exact_log_likelihood_monitor"] - expected) < 1e-9


def exact_log_likelihood_monitor(compiled, rows):
    return log_likelihood(compiled, rows, exact_log_z(compiled))
