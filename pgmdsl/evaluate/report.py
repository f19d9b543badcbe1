"""The evaluation a run prints: log Z (exact where feasible, else AIS), likelihoods, PL, reconstruction.

A sequence model gets its own (`evaluate_sequences`): log p(frame | past)
per window, and one-step prediction against repeating the last frame.
"""

from __future__ import annotations

import numpy as np

from ..errors import DSLError
from .ais import ais, default_schedule
from .bound import lower_bound
from .exact import MAX_STATES, cheapest, exact_log_z
from .exact import log_likelihood as exact_log_likelihood
from ..runtime.labels import label_metrics
from .pseudo import pseudo_log_likelihood
from .reverse import raise_log_likelihood
from .stack import bottom_rows, exact_stack_log_likelihood, stack_lower_bound, top_rows
from ..runtime.states import log2_count

MAX_DISTRIBUTIONS = 10_000_000  # AIS/RAISE intermediate distributions: 700 times the default, hours per run


def check_options(ais_runs: int = 100, distributions: int | None = None, raise_runs: int = 0, raise_rows: int = 100,
                  compiled=None) -> None:
    """Refuse evaluation options that would fail, or mean nothing, only after training; named as on the CLI.

    Called by `pgmdsl train` before it reads the data (and again with the
    compiled model, for the runs' memory, before it trains), by `pgmdsl eval`
    first, and by `evaluate`. AIS takes 0 runs (skip) or at least 2: its
    band is 3 standard errors of the runs' weights, and one run has none.
    """
    if ais_runs == 1:
        raise DSLError("--ais-runs 1: one run has no standard error, so log Z would get no band; "
                       "give 0 (no AIS) or at least 2")
    if ais_runs < 0:
        raise DSLError(f"--ais-runs must be 0 (no AIS) or at least 2, got {ais_runs}")
    if distributions is not None and not 1 <= distributions <= MAX_DISTRIBUTIONS:
        bound = "at least 1" if distributions < 1 else f"at most {MAX_DISTRIBUTIONS}"
        raise DSLError(f"--ais-distributions must be {bound}, got {distributions}")
    if raise_runs < 0:
        raise DSLError(f"--raise-runs must be at least 0, got {raise_runs}")
    if raise_rows < 1:
        raise DSLError(f"--raise-rows must be at least 1, got {raise_rows}")
    if compiled is not None:
        from ..runtime.initialize import check_rows

        check_rows(compiled, ais_runs, f"--ais-runs {ais_runs}: AIS chains of {compiled.model.name}")
        check_rows(compiled, raise_runs * raise_rows,
                   f"--raise-runs {raise_runs} x --raise-rows {raise_rows}: RAISE chains of {compiled.model.name}")


def evaluate(compiled, sets: dict, ais_runs: int = 100, distributions: int | None = None, force_exact: bool = False,
             reference=None, seed: int = 0, labels: str | None = None, raise_runs: int = 0,
             raise_rows: int = 100, progress: bool = False) -> dict:
    """Metrics for each named data set (e.g. train, validation): per-row means, and how log Z was found.

    reference: the rows whose marginals define AIS's base model (default: the first set).
    labels: a visible layer holding class labels: adds the accuracy of its most probable state given the rest.
    raise_runs: with more than 0, RAISE's conservative log-likelihood of each set's first `raise_rows` rows
    (the same schedule as AIS). progress: progress bars for AIS and RAISE (the CLI's, on a terminal).
    An AIS log Z keeps its runs' log importance weights and their effective sample size (plots.save_ais_weights).
    """
    from ..runtime.train import as_data, check_support, reconstruction_error

    check_options(ais_runs, distributions, raise_runs, raise_rows, compiled)
    sets = {name: as_data(compiled, rows) for name, rows in sets.items() if rows is not None}
    for rows in sets.values():
        check_support(compiled, rows)
    result = {"log_z": _log_z(compiled, reference if reference is not None else next(iter(sets.values())),
                              ais_runs, distributions, force_exact, seed, progress)}
    log_z = result["log_z"]["value"]
    for name, rows in sets.items():
        metrics = {"rows": len(next(iter(rows.values())))}
        metrics["reconstruction"] = reconstruction_error(compiled, rows)
        if raise_runs > 0:
            schedule = default_schedule() if distributions is None else np.linspace(0, 1, distributions + 1)
            subset = {k: v[:raise_rows] for k, v in rows.items()}
            estimate = raise_log_likelihood(compiled, subset, base=reference, runs=raise_runs, schedule=schedule,
                                            seed=seed, progress=progress)
            metrics["raise_log_likelihood"], metrics["raise_rows"] = estimate.mean, len(estimate.log_likelihood)
            if log_z is not None:  # the other side, on the same rows
                metrics["raise_rows_log_likelihood"] = float(np.mean(exact_log_likelihood(compiled, subset, log_z)))
        if labels is not None:
            scores = label_metrics(compiled, rows, labels)
            metrics["accuracy"], metrics["label_log_likelihood"] = scores["accuracy"], scores["log_likelihood"]
            metrics["labels"] = labels
        try:
            metrics["pseudo_log_likelihood"] = float(np.mean(pseudo_log_likelihood(compiled, rows)))
        except DSLError:
            pass
        if log_z is not None:
            try:
                metrics["log_likelihood"] = float(np.mean(exact_log_likelihood(compiled, rows, log_z)))
            except DSLError:
                metrics["log_likelihood_lower_bound"] = float(np.mean(lower_bound(compiled, rows, log_z)))
        result[name] = metrics
    return result


def evaluate_stack(stack, sets: dict, ais_runs: int = 100, distributions: int | None = None,
                   force_exact: bool = False, reference=None, seed: int = 0, progress: bool = False) -> dict:
    """A deep belief network's metrics per named set: the variational lower bound on log p(v) (Salakhutdinov and
    Murray 2008), the exact log-likelihood where every hidden layer can be enumerated, and the reconstruction
    error of the up and down passes; log Z is the top level's (exact where feasible, else AIS with its base model
    fitted to `reference`, default the first set, passed up the stack)."""
    from ..runtime.recipes.updown import reconstruction

    sets = {name: rows for name, rows in sets.items() if rows is not None}
    if stack.pooled:
        return _evaluate_pooled_stack(stack, sets, ais_runs, distributions, force_exact, reference, seed, progress)
    check_options(ais_runs, distributions, 0, 1, stack.levels[-1])
    base = top_rows(stack, reference if reference is not None else next(iter(sets.values())))
    result = {"log_z": _log_z(stack.levels[-1], base, ais_runs, distributions, force_exact, seed, progress)}
    log_z = result["log_z"]["value"]
    for name, rows in sets.items():
        rows = bottom_rows(stack, rows)
        metrics = {"rows": len(rows), "reconstruction": reconstruction(stack, stack.xp.asarray(rows, dtype=stack.dtype))}
        if log_z is not None:
            metrics["log_likelihood_lower_bound"] = float(np.mean(stack_lower_bound(stack, rows, log_z, seed=seed)))
            try:
                metrics["log_likelihood"] = float(np.mean(exact_stack_log_likelihood(stack, rows, log_z)))
            except DSLError:
                pass  # too many hidden states: the bound is the figure
        result[name] = metrics
    return result


def _evaluate_pooled_stack(stack, sets: dict, ais_runs, distributions, force_exact, reference, seed, progress) -> dict:
    """A convolutional DBN's metrics: the stack bound needs p(h | p), which a pooled level does not give, so the
    figures are the bottom level's own log-likelihood (a density on the data; log Z exact or by AIS) and the
    reconstruction error of the up pass and the top-down pass (runtime.stack.CompiledStack.down)."""
    from ..runtime.recipes.updown import reconstruction

    bottom = stack.levels[0]
    check_options(ais_runs, distributions, 0, 1, bottom)
    base = bottom_rows(stack, reference if reference is not None else next(iter(sets.values())))
    result = {"log_z": {**_log_z(bottom, base, ais_runs, distributions, force_exact, seed, progress), "of": "level 1"}}
    log_z = result["log_z"]["value"]
    for name, rows in sets.items():
        rows = bottom_rows(stack, rows)
        metrics = {"rows": len(rows), "reconstruction": reconstruction(stack, stack.xp.asarray(rows, dtype=stack.dtype))}
        if log_z is not None:
            metrics["level_1_log_likelihood"] = float(np.mean(exact_log_likelihood(bottom, rows, log_z)))
        result[name] = metrics
    return result


def _log_z(compiled, data, runs, distributions, force_exact, seed, progress=False) -> dict:
    try:
        summed, layers = cheapest(compiled)
        states = 2 ** log2_count(layers)
    except DSLError:
        states = float("inf")
    if force_exact or states <= MAX_STATES:
        return {"value": exact_log_z(compiled), "method": "exact", "states": states}
    if runs <= 0:
        return {"value": None, "method": "none"}
    schedule = default_schedule() if distributions is None else np.linspace(0, 1, distributions + 1)
    estimate = ais(compiled, data, runs=runs, schedule=schedule, seed=seed, progress=progress)
    return {"value": estimate.log_z, "method": "ais", "low": estimate.log_z_low, "high": estimate.log_z_high,
            "runs": runs, "distributions": estimate.distributions,
            "effective_sample_size": estimate.effective_sample_size, "log_weights": estimate.log_weights.tolist()}


def lines(result: dict) -> list[str]:
    """The result as aligned text lines for a terminal."""
    log_z = result["log_z"]
    if log_z["method"] == "exact":
        how = f"exact, {log_z['states']:.3g} states enumerated"
    elif log_z["method"] == "ais":
        how = (f"AIS, {log_z['runs']} runs x {log_z['distributions']} distributions; "
               f"log(Z +- 3 s.e.) in [{log_z['low']:.3f}, {log_z['high']:.3f}]; effective sample size "
               f"{log_z['effective_sample_size']:.1f} of {log_z['runs']}")
    else:
        how = "not estimated"
    text = [f"  log Z                  {log_z['value']:9.4f}  ({how})" if log_z["value"] is not None
            else f"  log Z                  ({how})"]
    labels = {"log_likelihood": "log-likelihood", "log_likelihood_lower_bound": "log-likelihood >=",
              "level_1_log_likelihood": "log p(v), level 1",
              "pseudo_log_likelihood": "pseudo-log-likelihood", "reconstruction": "reconstruction error",
              "raise_log_likelihood": "log-likelihood RAISE", "accuracy": "accuracy",
              "label_log_likelihood": "log p(label | rest)"}
    for name, metrics in result.items():
        if name == "log_z":
            continue
        for key, label in labels.items():
            if key in metrics:
                unit = {"reconstruction": "mean squared, per unit",
                        "accuracy": f"most probable {metrics.get('labels')} given the rest",
                        "raise_log_likelihood": "nats per row, a stochastic lower bound" + (
                            f" (with log Z above: {metrics['raise_rows_log_likelihood']:.4f})"
                            if "raise_rows_log_likelihood" in metrics else "")}.get(key, "nats per row")
                count = metrics["raise_rows"] if key == "raise_log_likelihood" else metrics["rows"]
                text.append(f"  {label:22s} {metrics[key]:9.4f}  {unit}, {name} ({count} rows)")
    return text


# ---- sequence models ----

CONDITIONAL_ROWS = 20  # windows whose log p(frame | past) AIS estimates: each takes --ais-runs chains of its own
# States enumerated in all for exact log p(frame | past), every window its own log Z(past): 2^22 take about 8 s
# on one CPU core (a CRBM of 16 binary hidden units: 64 windows). Enumeration is used when it covers at least
# CONDITIONAL_ROWS windows within this, else AIS.
EXACT_STATES = 2**22
PREDICTION_STEPS = 30  # Gibbs sweeps with the past clamped per predicted frame (runtime.sequences.predict)


def evaluate_sequences(compiled, sets: dict, ais_runs: int = 100, distributions: int | None = None,
                       force_exact: bool = False, seed: int = 0, rows: int = CONDITIONAL_ROWS,
                       gibbs_steps: int = PREDICTION_STEPS, progress: bool = False) -> dict:
    """For each named set of windows ({past, frame} dicts): log p(frame | past) and one-step prediction errors.

    The conditional log-likelihood is exact where enumerating the latent side
    of `rows` windows takes at most EXACT_STATES states (force_exact: always),
    over as many windows, spread over the set, as that many states cover;
    otherwise AIS estimates log Z(past) for at most `rows` windows spread over
    the set (rows x ais_runs chains), and ais_runs 0 skips it. The prediction errors (mean squared, per unit, in the
    units of the windows) cover every window: the model's prediction (visible
    means after `gibbs_steps` sweeps with the past clamped) and persistence
    (the last frame again), the baseline a sequence model has to beat.
    """
    from ..runtime.train import as_data, check_support
    from .conditional import conditional_log_likelihood, persistence_error, prediction_error

    check_options(ais_runs, distributions)
    if rows < 1 or gibbs_steps < 1:
        raise DSLError(f"evaluate_sequences: rows and gibbs_steps must be at least 1, got {rows} and {gibbs_steps}")
    method = _conditional_method(compiled, ais_runs, distributions, force_exact, rows)
    result = {"conditional": method}
    for name, windows in sets.items():
        if windows is None:
            continue
        windows = as_data(compiled, windows)
        check_support(compiled, windows)
        count = len(next(iter(windows.values())))
        metrics = {"rows": count}
        if method["method"] != "none":
            chosen = _spread(count, method["rows"])
            subset = {key: value[chosen] for key, value in windows.items()}
            schedule = None if distributions is None else np.linspace(0, 1, distributions + 1)
            values = conditional_log_likelihood(compiled, subset, runs=max(ais_runs, 2), schedule=schedule, seed=seed,
                                                max_states=method.get("states", 0), progress=progress)
            metrics["log_likelihood"], metrics["log_likelihood_rows"] = float(np.mean(values)), len(chosen)
        metrics["prediction_error"] = float(np.mean(prediction_error(compiled, windows, gibbs_steps, seed)))
        metrics["persistence_error"] = float(np.mean(persistence_error(compiled, windows)))
        metrics["gibbs_steps"] = gibbs_steps
        result[name] = metrics
    return result


def _conditional_method(compiled, ais_runs: int, distributions, force_exact: bool, rows: int) -> dict:
    """How log p(frame | past) is found: exact (states per window, windows that fit), AIS (runs, rows) or none."""
    from ..runtime.initialize import check_rows

    try:
        _, layers = cheapest(compiled)
        states = 2 ** log2_count(layers)
    except DSLError:
        if force_exact:
            raise DSLError(f"--exact: model {compiled.model.name} leaves a real-valued layer in every enumeration; "
                           "its conditional log-likelihood needs AIS") from None
        states = float("inf")
    if force_exact or (states <= MAX_STATES and EXACT_STATES // states >= rows):
        return {"method": "exact", "states": int(states), "rows": max(rows, int(EXACT_STATES // states))}
    if ais_runs <= 0:
        return {"method": "none"}
    check_rows(compiled, ais_runs * rows, f"--ais-runs {ais_runs} x {rows} windows: AIS chains of "
                                          f"{compiled.model.name}")
    return {"method": "ais", "runs": ais_runs, "rows": rows,
            "distributions": distributions if distributions is not None else len(default_schedule()) - 1}


def _spread(count: int, limit: int) -> np.ndarray:
    """Indices of at most `limit` of `count` rows, evenly spread (the windows of every part of the set)."""
    if count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(int))


def sequence_lines(result: dict, units: str = "") -> list[str]:
    """A sequence evaluation (evaluate_sequences) as aligned text lines; units: how the errors are measured."""
    method = result["conditional"]
    text = []
    for name, metrics in result.items():
        if name == "conditional" or not isinstance(metrics, dict):
            continue
        windows = metrics["rows"]
        if "log_likelihood" in metrics:
            used = metrics["log_likelihood_rows"]
            share = f"{windows} windows" if used == windows else f"{used} of {windows} windows"
            how = (f"exact, {method['states']:,} latent states per window" if method["method"] == "exact" else
                   f"AIS, {method['runs']} runs x {method['distributions']} distributions per window")
            text.append(f"  {'log p(frame | past)':26s} {metrics['log_likelihood']:9.4f}  nats per frame, {name} "
                        f"({share}; {how})")
        elif method["method"] == "none":
            text.append(f"  {'log p(frame | past)':26s} (not estimated: --ais-runs 0)")
        measured = f"mean squared per unit{units}"
        text.append(f"  {'one-step prediction error':26s} {metrics['prediction_error']:9.4f}  {measured}, {name} "
                    f"({windows} windows; visible means after {metrics['gibbs_steps']} Gibbs steps, past clamped)")
        text.append(f"  {'persistence error':26s} {metrics['persistence_error']:9.4f}  the same for repeating the "
                    "last frame (the baseline)")
    return text
