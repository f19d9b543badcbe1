"""Scaling out on Dask's distributed scheduler: AIS and RAISE runs, hyper-parameter sweeps, data-parallel training.

Nothing here schedules anything itself: every piece of work is a Dask task
(or, for data-parallel training, an actor per worker) and the Client given
decides where it runs: a LocalCluster on this machine, or any running
scheduler (Client("tcp://host:8786")). Dask is an optional extra
(pip install 'pgmdsl[dask]'); it is imported only when one of these is used.

What travels. A model goes to the workers as the bytes of its .npz
checkpoint (runtime.checkpoint.save: source, sizes, parameters), loaded there
with load_trained, which checks it like any untrusted checkpoint; a compiled
module is never pickled. Everything else is plain arrays and numbers. A
worker keeps the models it has loaded, by the checkpoint's digest, so the
tasks of one evaluation compile a model once per worker.

Reproducibility. Results never depend on the number of workers or on which
worker ran what: AIS and RAISE chains draw from their blocks' streams, seeded
by (seed, block index) (evaluate.ais.RunStreams), and a data-parallel shard
from (seed, shard index), so the serial call with the same seed computes
the same numbers.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from .errors import DSLError
from .ranges import split

INSTALL = "pip install 'pgmdsl[dask]'"
_LOADED: dict[str, object] = {}  # on a worker: checkpoint digest -> the Compiled model loaded from it
_KEEP_LOADED = 4  # models a worker keeps compiled; a sweep's evaluation or a fit needs one at a time


def require_dask():
    """dask.distributed, or a one-line DSLError saying how to install it."""
    try:
        import dask.distributed
    except ImportError:
        raise DSLError(f"distributed evaluation and training need Dask: {INSTALL}") from None
    return dask.distributed


# Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536 (to hand freed memory back to the system).
# Setting it turns off glibc's adaptive mmap threshold, so every array over 128 KiB is mapped and unmapped
# afresh, page faults and all: the temporaries of a CD step on 1000 rows of an RBM 784 x 1000 then took 1.5
# times as long (bench/README.md, "Dask"). Workers started here leave it unset.
WORKER_ENVIRONMENT = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def local_cluster(workers: int | None = None, **settings):
    """A LocalCluster of `workers` single-threaded worker processes (default: one per core, so NumPy's own
    threads are not oversubscribed), started with WORKER_ENVIRONMENT; settings: LocalCluster's others."""
    import dask

    distributed = require_dask()
    with dask.config.set(WORKER_ENVIRONMENT):
        return distributed.LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                        processes=True, **settings)


def connect(scheduler: str = "local"):
    """A Client: "local" starts local_cluster() sized to this machine, anything else is a running scheduler's
    address."""
    distributed = require_dask()
    if scheduler == "local":
        return distributed.Client(local_cluster())
    try:
        return distributed.Client(scheduler, timeout="10s")
    except OSError as error:
        raise DSLError(f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({error})") from None


# ---- models as checkpoint bytes ----

def model_bytes(compiled) -> bytes:
    """The checkpoint of `compiled` (runtime.checkpoint.save) as bytes: what a model travels as."""
    from .runtime.checkpoint import save

    with tempfile.TemporaryDirectory() as directory:
        return save(Path(directory) / "model.npz", compiled).read_bytes()


def loaded(payload: bytes):
    """The Compiled model of checkpoint bytes, loaded (and checked) once per worker process."""
    from .runtime.checkpoint import load_trained

    digest = hashlib.sha256(payload).hexdigest()
    if digest not in _LOADED:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "model.npz"
            path.write_bytes(payload)
            compiled = load_trained(path)
        while len(_LOADED) >= _KEEP_LOADED:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[digest] = compiled
    return _LOADED[digest]


def worker_threads(client) -> int:
    """How many tasks the cluster runs at once."""
    return max(1, sum(client.nthreads().values()))


# ---- AIS and RAISE: the chains split into tasks ----

def _estimators() -> dict:
    """{kind: function(compiled, bases, betas, seed, chains, rows) -> log weights of those chains}."""
    from .evaluate.ais import forward_weights
    from .evaluate.reverse import reverse_weights

    return {"ais": forward_weights, "raise": reverse_weights}


def _chain_task(payload: bytes, kind: str, bases: dict, betas: np.ndarray, seed: int, chains: range,
                rows: dict) -> np.ndarray:
    """On a worker: the log weights of `chains` (the model from its checkpoint bytes, the base as arrays)."""
    from .evaluate.ais import bases_from_arrays

    compiled = loaded(payload)
    return _estimators()[kind](compiled, bases_from_arrays(bases), betas, seed, chains, rows)


def map_chains(client, compiled, kind: str, bases: dict, betas: np.ndarray, seed: int, total: int,
               rows: dict) -> np.ndarray:
    """The log weights of chains 0..total-1 of an AIS ("ais") or RAISE ("raise") estimate, one task per worker
    thread, each a contiguous range of chains; rows: per-chain arrays (inputs, RAISE's starts), sliced per task.

    The weights equal the serial call's: the tasks hold whole blocks of chains, whose draws come from
    (seed, block) wherever they run (evaluate.ais.RunStreams).
    """
    from .evaluate.ais import BLOCK, bases_arrays

    require_dask()
    payload = client.scatter(model_bytes(compiled), broadcast=True)
    plain = bases_arrays(bases)
    futures = [client.submit(_chain_task, payload, kind, plain, betas, seed, chains,
                             {k: v[chains.start:chains.stop] for k, v in rows.items()}, pure=False)
               for chains in split(total, worker_threads(client), BLOCK)]
    return np.concatenate(client.gather(futures))


# ---- exact enumeration: the states split into tasks ----

def _enumeration_task(payload: bytes, fixed: dict, span: range, memory: int | None) -> np.ndarray:
    """On a worker: the log sum of exp(-F) over the states numbered in `span` (evaluate.exact.log_sums_of_span)."""
    from .evaluate.exact import log_sums_of_span

    return log_sums_of_span(loaded(payload), fixed, span, memory)


def map_enumeration(client, compiled, fixed: dict, memory: int | None = None) -> np.ndarray:
    """exact log Z's sums with the numbered states in one contiguous range per worker thread; the partial log sums
    (one per row of `fixed`, input rows, or one) added here."""
    from .evaluate.exact import state_count

    require_dask()
    payload = client.scatter(model_bytes(compiled), broadcast=True)
    futures = [client.submit(_enumeration_task, payload, fixed, span, memory, pure=False)
               for span in split(state_count(compiled), worker_threads(client))]
    return np.logaddexp.reduce(np.stack(client.gather(futures)), axis=0)


# ---- sweeps ----

TRAINING_VALUES = {  # grid keys that are fit options, with how a value is read; any other key is a model size
    "lr": float, "k": int, "epochs": int, "batch_size": int, "momentum": float, "weight_decay": float, "method": str,
}
RESULT_FIELDS = ["run", "seed", "status", "validation_log_likelihood", "train_log_likelihood", "log_z",
                 "log_z_method", "reconstruction", "seconds", "error"]


def parse_grid(assignments: list[str]) -> dict:
    """{key: [values]} from NAME=V1,V2,... strings (the CLI's --grid); sizes are integers."""
    grid = {}
    for text in assignments:
        name, _, values = text.partition("=")
        name = name.strip().replace("-", "_")
        if not name or not values:
            raise DSLError(f"--grid {text}: expected NAME=VALUE,VALUE,... (e.g. --grid lr=0.01,0.05)")
        read = TRAINING_VALUES.get(name, int)
        try:
            grid[name] = [read(value.strip()) for value in values.split(",")]
        except ValueError:
            kind = "a size (an integer)" if name not in TRAINING_VALUES else read.__name__
            raise DSLError(f"--grid {text}: each value of {name} must be {kind}") from None
    return grid


def configurations(grid: dict, seeds) -> list[tuple[dict, int]]:
    """Every (configuration, seed) of the grid, in a fixed order."""
    names = list(grid)
    return [(dict(zip(names, values)), int(seed))
            for values in itertools.product(*(grid[n] for n in names)) for seed in seeds]


def run_name(config: dict, seed: int) -> str:
    """The run directory's name: its settings and seed, e.g. lr-0.05_nh-64_seed-0."""
    return "_".join([f"{k}-{v}" for k, v in config.items()] + [f"seed-{seed}"])


def train_and_evaluate(model: str, data: str, config: dict, seed: int, run_dir: str, ais_runs: int = 100,
                       ais_distributions: int | None = 1000, validation_fraction: float = 0.1,
                       dtype: str = "float32") -> dict:
    """One run of a sweep (a task): train `model` on `data` with `config`, write its run directory, evaluate.

    The run directory gets model.npz, metrics.csv/json, evaluation.json and,
    last, result.json: its row of results.csv, which marks the run finished
    (a resumed sweep skips it). Any failure is the row's error, so one bad
    configuration does not stop the sweep.
    """
    started = time.perf_counter()
    row = {"run": Path(run_dir).name, "seed": seed, **config}
    try:
        row.update(_train_and_evaluate(model, data, config, seed, Path(run_dir), ais_runs, ais_distributions,
                                       validation_fraction, dtype), status="ok", error="")
    except Exception as error:  # noqa: BLE001 - a failed run is a row of the table, not a crashed sweep
        message = error.message if isinstance(error, DSLError) else f"{type(error).__name__}: {error}"
        row.update(status="failed", error=message.splitlines()[0] if message else type(error).__name__)
        if not isinstance(error, DSLError):
            (Path(run_dir) / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
    row["seconds"] = round(time.perf_counter() - started, 3)
    if row["status"] == "ok":
        (Path(run_dir) / "result.json").write_text(json.dumps(row, default=float) + "\n", encoding="utf-8")
    return row


def _train_and_evaluate(model: str, data: str, config: dict, seed: int, run_dir: Path, ais_runs: int,
                        ais_distributions: int | None, validation_fraction: float, dtype: str) -> dict:
    from . import runs
    from .evaluate.report import evaluate
    from .loading import load
    from .runtime import recipes, standardize
    from .runtime.datasets import load_data
    from .runtime.train import as_data

    run_dir.mkdir(parents=True, exist_ok=True)
    sizes = {k: v for k, v in config.items() if k not in TRAINING_VALUES}
    if load(model, **sizes).stack:
        raise DSLError(f"sweep trains one model at a time; {model} is a stack (train its levels with pgmdsl train)")
    rows = load_data(data, dtype=dtype)
    named, _ = runs.fit_visible(model, sizes, rows.shape[1])
    given = {k: config.get(k) for k in ("method", "k", "epochs", "lr", "batch_size", "momentum", "weight_decay")}
    chosen, recipe, _ = recipes.fill(named, given, None)
    chosen["weight_decay"] = chosen["weight_decay"] or 0.0
    train, validation = runs.split(rows, validation_fraction, seed)
    compiled = named.compile(dtype=dtype, seed=seed)
    train = as_data(compiled, train)
    validation = as_data(compiled, validation) if validation is not None else None
    compiled.standardization = standardize.fit(compiled, train)
    if compiled.standardization is not None:
        train, validation = (compiled.standardization.apply(part) if part is not None else None
                             for part in (train, validation))
    if recipe.before is not None:
        recipe.before(compiled, next(iter(train.values())), seed)
    history = compiled.fit(train, validation=validation, checkpoint=run_dir / "model.npz", verbose=0, seed=seed,
                           **recipe.arguments(compiled), **chosen)
    runs.write_metrics(history, run_dir, {"model": named.name, "sizes": named.arguments, "data": data,
                                          "options": {**chosen, "seed": seed}})
    result = evaluate(compiled, {"train": train, "validation": validation}, ais_runs=ais_runs,
                      distributions=ais_distributions, reference=train, seed=seed)
    if compiled.standardization is not None:
        result = runs.in_data_units(result, compiled.standardization)
    (run_dir / "evaluation.json").write_text(json.dumps(result, indent=2, default=float), encoding="utf-8")
    held = result.get("validation") or result["train"]
    return {"validation_log_likelihood": held.get("log_likelihood", held.get("log_likelihood_lower_bound")),
            "train_log_likelihood": result["train"].get("log_likelihood"),
            "log_z": result["log_z"]["value"], "log_z_method": result["log_z"]["method"],
            "reconstruction": result["train"]["reconstruction"]}


def sweep(model: str, data: str, grid: dict, output, seeds=(0,), client=None, ais_runs: int = 100,
          ais_distributions: int | None = 1000, validation_fraction: float = 0.1, dtype: str = "float32",
          on_row=None) -> list[dict]:
    """Train and evaluate every configuration of `grid` ({key: [values]}: fit options or model sizes) for each
    seed, one task each, and return the rows of output/results.csv sorted by held-out log-likelihood.

    client: a dask.distributed Client (None: one run after another in this
    process). Each run writes output/<run_name>/; runs whose result.json
    exists are finished and are not run again, so an interrupted sweep
    resumes where it stopped. results.csv is rewritten, atomically, as each
    run ends; failed runs are rows with status "failed" and their error (and
    are tried again on resume). on_row(row): called as each run ends. With
    matplotlib, output/sweep.png shows each configuration's held-out
    log-likelihood over its seeds. `data` is a data spec (runtime.datasets)
    and `output` a directory; the workers read and write them, so on a
    cluster of several machines both must be on a shared file system.
    """
    output = Path(output)
    if not grid:
        raise DSLError("sweep: give at least one --grid NAME=VALUE,... to sweep")
    output.mkdir(parents=True, exist_ok=True)
    settings = dict(ais_runs=ais_runs, ais_distributions=ais_distributions, validation_fraction=validation_fraction,
                    dtype=dtype)
    rows, pending = [], []
    for config, seed in configurations(grid, seeds):
        run_dir = output / run_name(config, seed)
        finished = run_dir / "result.json"
        if finished.exists():
            rows.append(json.loads(finished.read_text(encoding="utf-8")))
        else:
            pending.append((config, seed, run_dir))

    def record(row):
        rows.append(row)
        write_results(output, rows, grid)
        if on_row is not None:
            on_row(row)

    write_results(output, rows, grid)
    if client is None:
        for config, seed, run_dir in pending:
            record(train_and_evaluate(model, data, config, seed, str(run_dir), **settings))
    else:
        distributed = require_dask()
        futures = {client.submit(train_and_evaluate, model, data, config, seed, str(run_dir), **settings,
                                 pure=False): (config, seed, run_dir) for config, seed, run_dir in pending}
        for future in distributed.as_completed(futures):
            config, seed, run_dir = futures[future]
            try:
                row = future.result()
            except Exception as error:  # noqa: BLE001 - a worker lost mid-run: its row says so
                row = {"run": run_dir.name, "seed": seed, **config, "status": "failed",
                       "error": f"{type(error).__name__}: {error}".splitlines()[0]}
            record(row)
    plot_sweep(output, rows, grid)
    return sorted_rows(rows)


def sorted_rows(rows: list[dict]) -> list[dict]:
    """Finished runs by held-out log-likelihood, best first; then the failed ones."""
    def key(row):
        value = row.get("validation_log_likelihood")
        return (row.get("status") != "ok" or value is None, -(value if value is not None else 0.0), row["run"])

    return sorted(rows, key=key)


def write_results(output: Path, rows: list[dict], grid: dict) -> Path:
    """output/results.csv: one row per run (its settings, seed, final metrics, log-likelihood, time), atomically."""
    path = output / "results.csv"
    fields = ["run", *grid, *(f for f in RESULT_FIELDS if f != "run")]
    temporary = path.with_suffix(".csv.tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted_rows(rows))
    os.replace(temporary, path)
    return path


def plot_sweep(output: Path, rows: list[dict], grid: dict) -> Path | None:
    """output/sweep.png: each configuration's held-out log-likelihood, one dot per seed (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    by_config: dict[str, list[float]] = {}
    for row in rows:
        if row.get("status") == "ok" and row.get("validation_log_likelihood") is not None:
            label = ", ".join(f"{k}={row[k]}" for k in grid)
            by_config.setdefault(label, []).append(float(row["validation_log_likelihood"]))
    if not by_config:
        return None
    labels = sorted(by_config, key=lambda label: np.mean(by_config[label]))
    figure, axes = plt.subplots(figsize=(7, 0.4 * len(labels) + 1.5))
    for y, label in enumerate(labels):
        values = by_config[label]
        axes.scatter(values, [y] * len(values), color="tab:blue", s=18)
        axes.plot([np.mean(values)], [y], marker="|", color="black", markersize=14)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("held-out log-likelihood (nats per row; dots: seeds, bar: mean)")
    figure.tight_layout()
    path = output / "sweep.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


# ---- data-parallel training ----

class ShardTrainer:
    """A Dask actor on one worker: its shard of the rows, its share of each minibatch and of the persistent
    chains, and its own random stream, default_rng([seed, shard]).

    A trainer (runtime.train.Trainer) over the shard provides the data phase
    (inference for kept latent layers) and the negative phase (the sampler
    registered as `method`, with this worker's chains); its parameters are
    replaced by the driver's before every update.
    """

    def __init__(self, payload: bytes, rows: dict, shard: int, seed: int, batch: int, chains: int, options: dict):
        from .runtime.checkpoint import load_trained
        from .runtime.train import Trainer

        with tempfile.TemporaryDirectory() as directory:  # an actor owns its model: never shared with other tasks
            path = Path(directory) / "model.npz"
            path.write_bytes(payload)
            self.compiled = load_trained(path)
        self.trainer = Trainer(self.compiled, rows, batch_size=batch, chains=chains, seed=seed, fused=False,
                               **options)
        self.trainer.rng = self.trainer.sampler = np.random.default_rng([seed, shard])
        self.batch = batch
        self.order = None

    def shuffle(self) -> int:
        """A new epoch: the shard's rows in this stream's order; returns the shard's row count."""
        self.order = self.trainer.rng.permutation(self.trainer.rows)
        return self.trainer.rows

    def statistics(self, params: dict, update: int, lr_rows: float, lr_chains: float) -> dict:
        """This worker's share of update `update` of the epoch: sum over its rows of lr_rows x the data
        statistics, minus sum over its chains of lr_chains x the model statistics (the driver divides lr by
        the whole minibatch's rows and chains, so the workers' sums add up to the serial update)."""
        c, trainer = self.compiled, self.trainer
        for name, value in params.items():
            c.params[name][...] = value
        index = self.order[update * self.batch:(update + 1) * self.batch]
        batch = {k: c.xp.asarray(v[index]) for k, v in trainer.data.items()}
        positive = trainer.infer(batch) if trainer.latent else dict(batch)
        negative = trainer.phase.model_phase(positive, len(index), trainer.sampler)
        chains = len(next(iter(negative.values())))
        both = {k: c.xp.concatenate((v, negative[k])) for k, v in positive.items()}
        weights = np.concatenate((np.full(len(index), lr_rows), np.full(chains, -lr_chains))).astype(c.dtype)
        return {k: np.asarray(v) for k, v in c.module.statistics(c.params, both, weights).items()}

    def state(self) -> dict:
        """This worker's part of a checkpoint: its persistent chains (PCD's), its sampler's state, its stream."""
        from .runtime.gpu import to_host

        return {"chains": {k: np.asarray(to_host(v)) for k, v in (self.trainer.chains or {}).items()},
                "sampler": {k: np.asarray(v) for k, v in self.trainer.phase.state().items()},
                "rng": self.trainer.rng.bit_generator.state}

    def restore(self, chains: dict, sampler: dict, rng: dict, path: str) -> None:
        """Continue from a checkpoint's part for this worker (state()'s)."""
        xp, dtype = self.compiled.xp, self.compiled.dtype
        self.trainer.chains = {k: xp.asarray(v, dtype=dtype) for k, v in chains.items()} or None
        self.trainer.phase.restore(sampler, path)
        self.trainer.rng.bit_generator.state = rng  # also the sampler's generator: the same object


UNSUPPORTED_DISTRIBUTED = ("clamp", "mean_field_start", "sparsity_target", "labels")  # fit options client= refuses


def fit_data_parallel(compiled, data, client, method: str = "cd", k: int = 1, epochs: int = 10,
                      batch_size: int = 10, lr: float = 0.05, momentum: float = 0.0, weight_decay: float = 0.0,
                      seed: int = 0, chains: int | None = None, **options):
    """Synchronous data-parallel training (Compiled.fit(..., client=)); returns the per-epoch History.

    Validation rows, monitors and callbacks (early stopping included) are the serial trainer's, on the driver
    after each epoch (runtime.train.held_out_metrics, called_back). The rows are split into one shard per worker
    and sent to it once; each
    update's minibatch is batch_size rows, every worker drawing its equal share
    (batch_size / workers rows) from its shuffled shard, and the persistent
    chains (PCD) are split alike. The workers return their statistics,
    weighted by lr over the whole minibatch's rows and chains, and the driver
    sums them and takes the step (momentum, weight decay, constraints) on
    its own copy of the parameters, which go to the workers with the next
    update. The update is the serial one over the concatenated shares with
    each worker's rows and chains drawn from its stream (seed, worker).
    """
    from .runtime.initialize import initial_value
    from .runtime.options import options as training_options
    from .runtime import warned
    from .runtime.train import (History, _monitors, as_data, called_back, check_support, diverged, held_out_metrics,
                                 nonfinite_parameters, reconstruction_error)

    require_dask()
    callbacks, validation, monitor = (tuple(options.pop("callbacks", None) or ()), options.pop("validation", None),
                                      _monitors(options.pop("monitor", None) or ()))
    resume = options.pop("resume", None)
    path = options.pop("checkpoint", None) or resume
    refused = [name for name in UNSUPPORTED_DISTRIBUTED if _given(options.pop(name, None))]
    if refused:
        raise DSLError(f"fit(client=): {refused[0]}= is not supported in data-parallel training (fit without client=)")
    if options.pop("objective", "generative") != "generative":
        raise DSLError("fit(client=): data-parallel training climbs the generative objective only")
    options.pop("verbose", None)
    check = options.pop("check_data", True)
    settings = training_options(method=method, k=k, epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
                                weight_decay=weight_decay, seed=seed, chains=chains, **options)
    rows = as_data(compiled, data)
    validation = as_data(compiled, validation) if validation is not None else None
    if check:
        for part in (rows, validation or {}):
            check_support(compiled, part)
    count = len(next(iter(rows.values())))
    workers = sorted(client.scheduler_info()["workers"])
    if batch_size % len(workers) or (chains or batch_size) % len(workers):
        raise DSLError(f"fit(client=): batch_size {batch_size} and chains {chains or batch_size} must divide among "
                       f"the {len(workers)} workers")
    share, chain_share = batch_size // len(workers), (chains or batch_size) // len(workers)
    shards = split(count, len(workers))
    if len(shards) < len(workers) or min(len(s) for s in shards) < share:
        raise DSLError(f"fit(client=): {count} rows cannot give each of {len(workers)} workers a share of {share}")
    start = np.random.default_rng(seed)  # data-dependent initialisers (logit_mean), as Trainer.start
    for param in compiled.model.params:
        if param.init.kind == "logit_mean":
            compiled.params[param.name] = compiled.xp.asarray(initial_value(param, start, compiled.dtype, rows))
    payload = model_bytes(compiled)
    passed = dict(method=method, k=k, **options)
    # each shard straight to its worker, not in the task graph; the futures held until the actors have their rows
    held = [client.scatter({n: v[shard.start:shard.stop] for n, v in rows.items()}, workers=[address], hash=False)
            for address, shard in zip(workers, shards)]
    actors = [client.submit(ShardTrainer, payload, shard, index, seed, share, chain_share, passed, workers=[address],
                            actor=True, pure=False) for index, (address, shard) in enumerate(zip(workers, held))]
    actors = [future.result() for future in actors]
    del held
    xp, history = compiled.xp, History()
    velocity = {name: xp.zeros_like(value) for name, value in compiled.params.items()}
    first, updates = 0, 0
    if resume is not None and Path(resume).exists():
        velocity, first, updates, history = _resumed(compiled, actors, resume, settings, chain_share)
    rates = settings.parameter_rates([p.name for p in compiled.model.params])
    per_epoch = min(len(s) for s in shards) // share  # every worker a full share each update
    total = epochs * per_epoch
    good = {name: value.copy() for name, value in compiled.params.items()}
    sample = {name: value[:1000] for name, value in rows.items()}
    shown = set()  # the numerical warnings shown so far: each once a run
    for epoch in range(first, epochs):
        started = time.perf_counter()
        with warned.held() as caught:  # a diverging epoch's overflow warnings go into its message
            rate = _epoch_updates(compiled, actors, settings, velocity, rates, epoch, updates, per_epoch, total)
            updates += per_epoch
            bad = nonfinite_parameters(compiled)
            # the serial trainer's monitoring sample, on the driver: the same History for the same parameters
            reconstruction = 0.0 if bad else float(reconstruction_error(compiled, sample))
        if not bad and not math.isfinite(reconstruction):
            bad = ["the reconstruction error"]
        if bad:
            raise diverged(compiled, bad, epoch, updates, good, path, warned.summary(caught))
        warned.release(caught, shown)
        good = {name: value.copy() for name, value in compiled.params.items()}
        row = {"epoch": epoch + 1, "lr": rate, "reconstruction": reconstruction,
               **held_out_metrics(compiled, sample, validation, monitor),
               "seconds": time.perf_counter() - started}
        history.append(row)
        stop = called_back(callbacks, compiled, row)  # early stopping, as the serial trainer's callbacks
        if path and (stop or (epoch + 1) % settings.checkpoint_every == 0 or epoch + 1 == epochs):
            _save(compiled, actors, path, settings, velocity, epoch + 1, updates, history)
        if stop:
            break
    return history


def _epoch_updates(compiled, actors, settings, velocity: dict, rates, epoch: int, updates: int, per_epoch: int,
                   total: int) -> float:
    """One epoch's synchronous updates: the workers shuffle their shards, then each update they get the
    parameters and return their shares of the step, which the driver sums and takes; returns the last rate."""
    from .runtime.train import apply_steps

    for future in [actor.shuffle() for actor in actors]:
        future.result()
    rate, rows, chains = settings.base_lr, settings.batch_size, settings.chains or settings.batch_size
    for update in range(per_epoch):
        rate = settings.learning_rate(updates + update, total)
        params = {name: np.asarray(value) for name, value in compiled.params.items()}
        parts = [actor.statistics(params, update, rate / rows, rate / chains) for actor in actors]
        apply_steps(compiled, settings, _summed([part.result() for part in parts]), velocity, rates, rate, epoch)
    return rate


def _save(compiled, actors, path, settings, velocity: dict, epoch: int, updates: int, history) -> None:
    """A checkpoint of data-parallel training: the driver's parameters, momentum and History, the workers'
    chains in worker order (the serial trainer's form: chains= or batch_size rows), each worker's sampler state
    under w<index>/ and its stream (train/state's "workers"), so that resume= continues on as many workers."""
    from .runtime.checkpoint import save

    parts = [future.result() for future in [actor.state() for actor in actors]]
    chains = {name: np.concatenate([part["chains"][name] for part in parts]) for name in parts[0]["chains"]}
    save(path, compiled, {
        "options": settings.as_dict(), "velocity": velocity, "chains": chains,
        "sampler": {f"w{index}/{name}": value for index, part in enumerate(parts)
                    for name, value in part["sampler"].items()},
        "rng": None, "workers": [part["rng"] for part in parts],
        "epoch": epoch, "updates": updates, "activity": {}, "history": list(history)})


def _resumed(compiled, actors, path, settings, chain_share: int):
    """Load a data-parallel checkpoint (_save's) into the driver and the workers; returns (velocity, epoch,
    updates, History)."""
    from .runtime.train import History, resumed_training

    training = resumed_training(compiled, path, settings, workers=len(actors))
    futures = []
    for index, (actor, stream) in enumerate(zip(actors, training["workers"])):
        rows = slice(index * chain_share, (index + 1) * chain_share)
        prefix = f"w{index}/"
        sampler = {name[len(prefix):]: value for name, value in training["sampler"].items() if name.startswith(prefix)}
        futures.append(actor.restore({k: v[rows] for k, v in training["chains"].items()}, sampler, stream, str(path)))
    for future in futures:
        future.result()
    return training["velocity"], training["epoch"], training["updates"], History(training["history"])


def _given(value) -> bool:
    """Whether a fit option was set: not None and not an empty tuple, list or dict (arrays count as set)."""
    return value is not None and not (isinstance(value, (tuple, list, dict)) and not value)


def _summed(parts: list[dict]) -> dict:
    """The workers' statistics added up, in a fixed order (the workers'), so the sum is reproducible."""
    total = {name: value.copy() for name, value in parts[0].items()}
    for part in parts[1:]:
        for name, value in part.items():
            total[name] += value
    return total
