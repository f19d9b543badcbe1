"""The `pgmdsl` command: check, graph, compile, train and sample.

A DSL error prints `file:line:column: error: ...` with a caret line and exits
with status 1, never with a traceback; so do bad data, a missing run
directory, files that cannot be written and sizes past the memory budget
(one line each). Options are checked before data is read or training starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from .errors import DSLError
from .loading import load


def _sizes(assignments: list[str]) -> dict[str, int]:
    sizes = {}
    for assignment in assignments or ():
        name, sep, value = assignment.partition("=")
        if not sep or not name.strip():
            raise DSLError(f"--set takes NAME=INTEGER, got '{assignment}'")
        try:
            sizes[name.strip()] = int(value)
        except ValueError:
            raise DSLError(f"--set {name.strip()}: '{value}' is not an integer") from None
    return sizes


def _learning_rates(text: str):
    """--lr: one number, or NAME=NUMBER,... (argparse turns the ValueError into a usage error)."""
    if "=" not in text:
        return float(text)
    rates = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if not name.strip() or name.strip() in rates:
            raise ValueError(f"--lr takes NAME=RATE pairs, each name once: {text!r}")
        rates[name.strip()] = float(value)
    return rates


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a .dgm file or a standard-library model name (rbm, dbm, ...)")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE", default=[], help="override a size parameter")


def check_command(args) -> int:
    from .symbolic.derive import derive

    model = load(args.model, **_sizes(args.set))
    for part in model.stack or (model,):  # the derivation's checks too: bounded, linear, quadratic energies
        derive(part.ir, part.schedule)
    print(model.summary())
    return 0


def graph_command(args) -> int:
    from .drawing import draw_png, to_dot

    model = load(args.model, **_sizes(args.set))
    output = Path(args.output)
    if output.suffix.lower() == ".png":
        draw_png(model, output)
    else:
        output.write_text(to_dot(model), encoding="utf-8")
    print(f"wrote {output}")
    return 0


def compile_command(args) -> int:
    from .compiler import generate_source

    model = load(args.model, **_sizes(args.set))
    source = generate_source(model, args.backend, args.dtype)
    if args.output:
        Path(args.output).write_text(source, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(source, end="")
    return 0


def train_command(args) -> int:
    from . import runs
    from .evaluate.report import check_options
    from .runtime.datasets import load_data
    from .runtime.options import options as training_options
    from .runtime.train import as_data, check_support

    check_options(args.ais_runs, args.ais_distributions, args.raise_runs, args.raise_rows)
    resume = _resumable(args.resume) if args.resume else None
    run_dir = Path(args.output) if args.output else resume[0].parent
    if run_dir.exists() and not run_dir.is_dir():
        raise DSLError(f"-o {run_dir}: exists and is not a directory")
    sizes = _sizes(args.set)
    named = load(args.model, **sizes)  # an unknown model or a bad --set is reported before the data is read
    lr = args.lr if args.lr is not None else runs.default_lr(named)
    options = dict(method=args.method, k=args.k, epochs=args.epochs, lr=lr, batch_size=args.batch_size,
                   seed=args.seed, momentum=args.momentum, weight_decay=args.weight_decay, objective=args.objective,
                   labels=args.labels, generative_weight=args.generative_weight)
    training_options(**options)  # so are bad options
    data = load_data(args.data, dtype=args.dtype)
    model, note = runs.fit_visible(args.model, sizes, data.shape[1], labels=args.labels)
    if note:
        print(note)
    if resume:
        _same_model(args, resume[1], model)
    data = _with_labels(model, data, args)
    train, validation = runs.split(data, args.validation_fraction, args.seed)
    rows = runs.row_count(train)
    if args.batch_size > rows:
        print(f"batch size {args.batch_size} is more than the {rows} training rows: using {rows}")
        options["batch_size"] = rows
    compiled = model.compile(dtype=args.dtype, seed=args.seed)
    check_options(args.ais_runs, args.ais_distributions, args.raise_runs, args.raise_rows, compiled)
    train = as_data(compiled, train)
    validation = as_data(compiled, validation) if validation is not None else None
    compiled.standardization = _standardization(args, compiled, train, resume)
    if compiled.standardization is not None:
        train, validation = (compiled.standardization.apply(part) if part is not None else None
                             for part in (train, validation))
    for part in (train, validation):  # fit checks them too, but only after the run directory is made
        if part is not None:
            check_support(compiled, part)
    run_dir.mkdir(parents=True, exist_ok=True)
    shape = ", ".join(f"{k}={v}" for k, v in model.arguments.items())
    held = f", {runs.row_count(validation)} for validation" if validation is not None else ""
    labelled = f" (labels in {args.labels})" if args.labels else ""
    rate = _shown_rate(lr) + (" (the default for real-valued units; --lr sets it)" if lr != runs.DEFAULT_LR and
                              args.lr is None else "")
    print(f"training {model.name}({shape}) on {args.data}{labelled}: {rows} rows{held}; "
          f"{args.method}-{args.k}, {args.epochs} epochs, lr {rate}, batch size {options['batch_size']}", flush=True)
    if compiled.standardization is not None:
        print(f"standardised {', '.join(compiled.standardization.layers)}: each unit to mean 0, standard deviation 1 "
              "on the training rows (kept with the run, undone for samples; --no-standardize keeps the raw values)",
              flush=True)
    if resume:
        print(f"resuming from {resume[0]} after epoch {resume[2]} of {args.epochs}", flush=True)
    try:
        history = compiled.fit(train, validation=validation, checkpoint=run_dir / "model.npz", verbose=0,
                               resume=resume[0] if resume else None, callbacks=[_epoch_printer(args.epochs)],
                               **options)
    except KeyboardInterrupt:
        kept = f"; {run_dir / 'model.npz'} holds the last finished epoch" if (run_dir / "model.npz").exists() else ""
        print(f"interrupted{kept} (continue with --resume {run_dir})", file=sys.stderr)
        return 130
    info = {"model": model.name, "sizes": model.arguments, "data": args.data, "labels": args.labels,
            "dtype": args.dtype,
            "rows": {"training": rows, "validation": runs.row_count(validation)},
            "standardized": list(compiled.standardization.layers) if compiled.standardization else [],
            "options": options}
    written = [run_dir / "model.npz", *runs.write_metrics(history, run_dir, info)]
    pictures, notes = runs.save_pictures(compiled, history, run_dir, seed=args.seed)
    for line in notes:
        print(line)
    print(f"wrote {run_dir}{os.sep}: {', '.join(path.name for path in written + pictures)}")
    _print_evaluation(compiled, {"train": train, "validation": validation}, args, run_dir)
    print(f"draw more samples with: pgmdsl sample {run_dir} -n 64")
    return 0


def _shown_rate(lr) -> str:
    return ",".join(f"{name}={rate:g}" for name, rate in lr.items()) if isinstance(lr, dict) else f"{lr:g}"


def _standardization(args, compiled, train: dict, resume):
    """The standardisation of the training rows (None: no real-valued layer, or --no-standardize).

    A resumed run keeps the one it was trained with (its checkpoint's), and
    refuses to switch: its parameters are in those units.
    """
    from .runtime import standardize
    from .runtime.checkpoint_contents import fit_standardization

    wanted = None if args.no_standardize else standardize.fit(compiled, train)
    if not resume:
        return wanted
    saved = fit_standardization(resume[0], resume[3], compiled.model)
    if (saved is None) != (wanted is None):
        how = ("on standardised rows: drop --no-standardize" if saved is not None
               else "on raw rows: give --no-standardize")
        raise DSLError(f"--resume {args.resume}: the run was trained {how}")
    return saved


def _resumable(run: str) -> tuple[Path, dict, int, dict | None]:
    """(checkpoint, its meta, epochs done, its standardisation as stored) of a run to resume: one with the
    trainer's state, checked before data."""
    from .runtime.checkpoint import read

    run = Path(run)
    checkpoint = run if run.is_file() else run / "model.npz"
    if not checkpoint.is_file():
        raise DSLError(f"--resume {run}: no checkpoint at {checkpoint} (a run directory written by pgmdsl train)")
    contents = read(checkpoint)
    if contents["training"] is None:
        raise DSLError(f"--resume {run}: {checkpoint} holds no training state to resume from (it was saved from "
                       "Python, not by pgmdsl train)")
    return checkpoint, contents["meta"], contents["training"]["epoch"], contents["standardization"]


def _same_model(args, meta: dict, model) -> None:
    """A run resumes only as the model, sizes and dtype it was trained as (the trainer checks its options)."""
    if (meta["model"], meta["sizes"], meta["dtype"]) != (model.name, model.arguments, args.dtype):
        saved = ", ".join(f"{k}={v}" for k, v in meta["sizes"].items())
        given = ", ".join(f"{k}={v}" for k, v in model.arguments.items())
        raise DSLError(f"--resume {args.resume}: its checkpoint holds {meta['model']}({saved}) in {meta['dtype']}, "
                       f"not {model.name}({given}) in {args.dtype}: give the run's model, --set and --dtype")


def _print_evaluation(compiled, sets: dict, args, run_dir: Path) -> None:
    import json

    from . import runs
    from .evaluate.report import evaluate, lines

    if args.ais_runs == 0 and not args.exact and not args.labels:
        return
    print("evaluating...", flush=True)
    result = evaluate(compiled, sets, ais_runs=args.ais_runs, distributions=args.ais_distributions,
                      force_exact=args.exact, reference=sets.get("train"), seed=getattr(args, "seed", 0),
                      labels=args.labels, raise_runs=args.raise_runs, raise_rows=args.raise_rows)
    standardization = compiled.standardization
    if standardization is not None:
        result = runs.in_data_units(result, standardization)
    print("evaluation:")
    for line in lines(result):
        print(line)
    if standardization is not None:
        print(f"  (log-likelihoods in the data's units: the standardised rows' less sum(log scale) = "
              f"{standardization.log_jacobian:.4f} nats; log Z and reconstruction errors in standardised units)")
        result = {**result, "standardized": {"layers": list(standardization.layers),
                                             "log_jacobian": standardization.log_jacobian}}
    (run_dir / "evaluation.json").write_text(json.dumps(result, indent=2, default=float), encoding="utf-8")


def eval_command(args) -> int:
    from . import runs
    from .evaluate.report import check_options
    from .runtime.checkpoint import load_trained
    from .runtime.datasets import load_data
    from .runtime.train import as_data

    check_options(args.ais_runs, args.ais_distributions, args.raise_runs, args.raise_rows)
    run = Path(args.run)
    checkpoint = run if run.is_file() else run / "model.npz"
    if not checkpoint.is_file():
        raise DSLError(f"no checkpoint at {checkpoint} (make one with: pgmdsl train MODEL --data ... -o {run})")
    compiled = load_trained(checkpoint)
    data = _with_labels(compiled.model, load_data(args.data, dtype=compiled.dtype.name), args)
    if compiled.standardization is not None:  # the rows in the units the model was trained in
        data = compiled.standardization.apply(as_data(compiled, data))
    print(f"evaluating {compiled.model.name} from {checkpoint} on {args.data} ({runs.row_count(data)} rows)", flush=True)
    _print_evaluation(compiled, {"data": data}, args, checkpoint.parent)
    return 0


def _with_labels(model, data, args):
    """The rows, or with --labels LAYER a dict: the rows for the other observed layer, one-hot labels for LAYER."""
    from . import runs
    from .runtime.datasets import DataError, load_labels, one_hot

    if not args.labels:
        return data
    layer = runs.label_layer(model, args.labels)
    labels = load_labels(args.data)
    if len(labels) != len(data):
        raise DataError(f"--data {args.data}: {len(labels)} labels for {len(data)} rows")
    others = [n.name for n in model.layers if n.role in ("visible", "input") and n.name != layer.name]
    if len(others) != 1:
        raise DSLError(f"--labels {layer.name}: model {model.name} observes {', '.join(others) or 'nothing'} besides "
                       "its labels; the data's rows fill one layer")
    (other,) = others
    return {other: data, layer.name: one_hot(labels, layer.shape[0], f"layer '{layer.name}'").astype(data.dtype)}


def _epoch_printer(epochs: int):
    width = len(str(epochs))

    def report(compiled, row: dict) -> None:
        gap = row.get("free_energy_gap")
        gap = f"  free-energy gap {gap:+.4f}" if gap is not None else ""
        accuracy = "".join(f"  {label} accuracy {row[key]:.4f}" for label in ("train", "validation")
                           if (key := f"{label}_label_accuracy") in row)
        print(f"epoch {row['epoch']:>{width}}/{epochs}  reconstruction {row['reconstruction']:.4f}{gap}{accuracy}  "
              f"({row['seconds']:.2f} s)", flush=True)

    return report


def sample_command(args) -> int:
    import numpy as np

    from . import plots, runs
    from .runtime.checkpoint import load_trained

    run = Path(args.run)
    checkpoint = run if run.is_file() else run / "model.npz"
    if not run.exists():
        raise DSLError(f"no such run directory: {run}")
    if not checkpoint.is_file():
        raise DSLError(f"{run} holds no model.npz (make one with: pgmdsl train MODEL --data ... -o {run})")
    if args.n < 1 or args.steps < 0 or args.seed < 0:
        raise DSLError("-n must be positive, --steps at least 0 and --seed at least 0")
    output = Path(args.output) if args.output else None
    if output is None:
        output = checkpoint.parent / f"samples-{args.n}.{'png' if plots.have_matplotlib() else 'npy'}"
    if output.suffix.lower() not in (".png", ".npy"):
        raise DSLError(f"-o takes a .png or .npy file, got '{output}'")
    compiled = load_trained(checkpoint)
    image = plots.visible_image(compiled)
    if output.suffix.lower() == ".png" and image is None:
        raise DSLError(f"the visible layer of {compiled.model.name} is not an image: write the samples to a .npy file")
    samples = runs.visible_samples(compiled, args.n, args.steps, args.seed, means=args.mean,
                                   layer=image[0] if image else None)
    if output.suffix.lower() == ".npy":
        np.save(output, samples)
    else:
        what = "probabilities" if args.mean else "draws"
        title = f"{image[0]} after {args.steps} Gibbs steps ({what})"
        plots.save_tiles(samples.reshape((-1,) + image[1]), output, title, limit=args.n)
    print(f"wrote {output} ({args.n} samples after {args.steps} Gibbs steps)")
    return 0


COMMANDS = {
    "check": (check_command, "parse and check a model; print its layers, params, terms and Gibbs schedule"),
    "graph": (graph_command, "draw a model's factor graph (.dot always, .png with matplotlib)"),
    "compile": (compile_command, "print (or write with -o) the generated Python module of a model"),
    "train": (train_command, "train a model on a data set; write its checkpoint, metrics and pictures to a run directory"),
    "sample": (sample_command, "draw samples from a trained run (its model.npz) by Gibbs sampling"),
    "eval": (eval_command, "evaluate a trained run on data: log Z (exact or AIS), log-likelihood, pseudo-likelihood"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgmdsl", description="Compile, train and evaluate energy-based models written in .dgm")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == "sample":
            _add_sample_arguments(sub)
            continue
        if name == "eval":
            sub.add_argument("run", metavar="RUN_DIR", help="a directory written by `pgmdsl train` (or its model.npz)")
            sub.add_argument("--data", required=True, metavar="SPEC", help="the rows to evaluate")
            _add_evaluation_arguments(sub)
            continue
        _add_model_arguments(sub)
        if name == "train":
            _add_train_arguments(sub)
        if name == "graph":
            sub.add_argument("-o", "--output", required=True, help="out.dot or out.png")
        if name == "compile":
            sub.add_argument("--backend", default="numpy", help="numpy (CPU) or cupy (GPU)")
            sub.add_argument("--dtype", default="float32", choices=["float32", "float64"])
            sub.add_argument("-o", "--output", help="write the module here instead of printing it")
    return parser


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from .runs import DEFAULT_LR, REAL_VALUED_LR
    from .runtime.datasets import DATA_SPECS

    parser.add_argument("--data", required=True, metavar="SPEC", help=f"the training data: {DATA_SPECS}")
    parser.add_argument("--method", default="pcd", choices=["cd", "pcd"],
                        help="contrastive divergence or persistent CD (default pcd)")
    parser.add_argument("--k", type=int, default=1, help="Gibbs sweeps per update (default 1)")
    parser.add_argument("--epochs", type=int, default=20, help="passes over the training rows (default 20)")
    parser.add_argument("--lr", type=_learning_rates, default=None, metavar="RATE|NAME=RATE,...",
                        help=f"learning rate, or one per parameter: W=1,a=0,b=1 (0 freezes one); default "
                             f"{DEFAULT_LR}, {REAL_VALUED_LR} for models with real-valued (quadratic) observed units")
    parser.add_argument("--batch-size", type=int, default=10, help="rows per update (default 10)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the initial weights, the split and the sampler (default 0)")
    parser.add_argument("--momentum", type=float, default=0.0, help="in [0, 1) (default 0)")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty on weight matrices (default 0)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--no-standardize", action="store_true",
                        help="train on the raw values of real-valued (Gaussian) observed layers; by default each "
                             "unit is standardised to mean 0, standard deviation 1 on the training rows")
    parser.add_argument("--objective", default="generative", choices=["generative", "discriminative", "hybrid"],
                        help="log p(data) by CD/PCD (default); log p(labels | rest), exact (needs --labels); or both")
    parser.add_argument("--generative-weight", type=float, default=0.01,
                        help="hybrid objective: weight of the generative step (default 0.01)")
    parser.add_argument("--validation-fraction", type=float, default=0.1,
                        help="rows held out for the free-energy gap (default 0.1; 0 for none)")
    parser.add_argument("-o", "--output", metavar="RUN_DIR",
                        help="writes model.npz, metrics.csv, metrics.json and (with matplotlib) PNG pictures here "
                             "(default with --resume: the resumed run's directory)")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue a killed or finished run from its model.npz to --epochs, exactly as if never "
                             "stopped: give the run's model, --set, --data and options again")
    _add_evaluation_arguments(parser)


def _add_evaluation_arguments(parser: argparse.ArgumentParser, default_runs: int = 100) -> None:
    parser.add_argument("--labels", metavar="LAYER", default=None,
                        help="put the data's class labels (digits' 0-9, or a .npz's 'labels') one-hot in this visible "
                             "layer, and report the accuracy of p(LAYER | rest)")
    parser.add_argument("--ais-runs", type=int, default=default_runs,
                        help=f"AIS runs when log Z cannot be enumerated (default {default_runs}; 0: skip)")
    parser.add_argument("--ais-distributions", type=int, default=None,
                        help="intermediate distributions (default: the 14,500 of Salakhutdinov and Murray)")
    parser.add_argument("--exact", action="store_true", help="enumerate for log Z even when it is large")
    parser.add_argument("--raise-runs", type=int, default=0,
                        help="RAISE runs per row: a conservative log-likelihood next to AIS's (default 0: none)")
    parser.add_argument("--raise-rows", type=int, default=100, help="how many of the rows RAISE evaluates (default 100)")


def _add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="a directory written by `pgmdsl train` (or its model.npz)")
    parser.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("--steps", type=int, default=1000, help="Gibbs sweeps from a random start (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mean", action="store_true",
                        help="the visible layer's probabilities given the last state, not draws")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="FILE.png (tiles) or FILE.npy (rows); default RUN_DIR/samples-N.png")


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (a cache directory others can write to, ...) as `warning: ...` lines, without source excerpts."""
    print(f"warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and args.output is None and args.resume is None:
        parser.error("train needs -o RUN_DIR (or --resume RUN_DIR)")
    shown, warnings.showwarning = warnings.showwarning, _one_line_warning
    try:
        return _run(args)
    finally:
        warnings.showwarning = shown


def _run(args) -> int:
    """The command, with every failure a user can cause as one line and an exit status."""
    try:
        return COMMANDS[args.command][0](args)
    except DSLError as error:
        print(error, file=sys.stderr)
        return 1
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except MemoryError as error:  # past the budget checks: the machine has less memory than the budget
        print(f"error: out of memory: {error or 'an array did not fit'}; try smaller sizes, batches or sample "
              "counts", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except OSError as error:  # a run directory or output file that cannot be written
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
