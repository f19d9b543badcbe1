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

from . import __version__
from .errors import DSLError
from .loading import load
from .runtime.stack import CompiledStack


def sparsity_text(options: dict) -> str:
    """', sparsity target 0.05 (cost 1)' for a start line, or '' without one."""
    target = options.get("sparsity_target")
    if target is None or not options.get("sparsity_cost"):
        return ""
    shown = ", ".join(f"{k}={v:g}" for k, v in target.items()) if isinstance(target, dict) else f"{target:g}"
    return f", sparsity target {shown} (cost {options['sparsity_cost']:g})"


def _sparsity(args) -> dict:
    """--sparsity-target and --sparsity-cost as fit() options: only those given (the recipe fills the others)."""
    given = {}
    if getattr(args, "sparsity_target", None) is not None:
        given["sparsity_target"] = args.sparsity_target
        given["sparsity_cost"] = 1.0 if args.sparsity_cost is None else args.sparsity_cost
    elif getattr(args, "sparsity_cost", None) is not None:
        given["sparsity_cost"] = args.sparsity_cost
    return given


def _sparsity_targets(text: str):
    """--sparsity-target: one rate for every hidden layer, or LAYER=RATE,..."""
    try:
        if "=" not in text:
            return float(text)
        return {name.strip(): float(rate) for name, rate in (part.split("=", 1) for part in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a rate (0.05) or LAYER=RATE,... (h=0.05,p=0.2)") from None


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


def _epochs(text: str):
    """--epochs: one count, or one per level of a stack (10,10,20)."""
    return tuple(int(part) for part in text.split(",")) if "," in text else int(text)


def _learning_rates(text: str):
    """--lr: one number, NAME=NUMBER,..., or one number per level of a stack (0.05,0.05,0.01); argparse turns the
    ValueError into a usage error."""
    if "=" not in text:
        return tuple(float(part) for part in text.split(",")) if "," in text else float(text)
    rates = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if not name.strip() or name.strip() in rates:
            raise ValueError(f"--lr takes NAME=RATE pairs, each name once: {text!r}")
        rates[name.strip()] = float(value)
    return rates


def _temperatures(text: str):
    """--temperatures: a count (geometric from 1 to 0.1) or the inverse temperatures, comma-separated."""
    if "," not in text:
        return int(text)
    return tuple(float(part) for part in text.split(","))


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


def _interactive(args=None) -> bool:
    """Progress bars for the long evaluations only on a terminal and without --quiet: a log file or a pipe gets
    the results alone."""
    from .runtime.progress import interactive

    return interactive() and not getattr(args, "quiet", False)


def _epochs_shown(args, epochs: int) -> list:
    """The per-epoch lines' callback, or none with --quiet."""
    return [] if args.quiet else [_epoch_printer(epochs)]


def list_command(args) -> int:
    """The standard library, one model a line: its name, the recipe `pgmdsl train` gives it, and the first sentence
    of its opening comment."""
    from .resources import models_dir, standard_models
    from .runtime import recipes

    names = standard_models()
    width = max(len(name) for name in names)
    chosen = {name: recipes.choose(load(name)).name for name in names}
    recipe_width = max(len(recipe) for recipe in chosen.values())
    for name in names:
        summary = library_summary((models_dir() / f"{name}.dgm").read_text(encoding="utf-8"))
        print(f"{name:<{width}}  {chosen[name]:<{recipe_width}}  {summary}")
    return 0


def library_summary(text: str) -> str:
    """The first sentence of a .dgm file's opening comment (the lines starting with '#' before the model)."""
    words = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        words.append(line.lstrip("#").strip())
    comment = " ".join(w for w in words if w)
    end = comment.find(". ")
    return comment[:end + 1] if end >= 0 else comment


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


def cache_command(args) -> int:
    """`cache info`: where the cache is, how many entries and bytes; `cache clear`: remove its entries."""
    from . import cache

    if args.action == "clear":
        directory, removed = cache.clear()
        print(f"removed {removed} {'entry' if removed == 1 else 'entries'} from {directory}")
        return 0
    directory, found, size = cache.usage()
    if found is None:
        print(f"cache directory: {directory} (not used: other users can write to it, or it is not yours; set "
              "PGMDSL_CACHE_DIR to a private directory)")
        return 0
    print(f"cache directory: {directory}")
    print(f"entries: {len(found)} ({size:,} bytes)")
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
    from .runtime import recipes
    from .runtime.options import options as training_options

    check_options(args.ais_runs, args.ais_distributions, args.raise_runs, args.raise_rows)
    resume = _resumable(args.resume) if args.resume else None
    run_dir = Path(args.output) if args.output else resume[0].parent
    if run_dir.exists() and not run_dir.is_dir():
        raise DSLError(f"-o {run_dir}: exists and is not a directory")
    if (run_dir / "model.npz").exists() and resume is None and not args.overwrite:
        raise DSLError(f"-o {run_dir}: already holds a run (model.npz); choose another directory, continue it with "
                       f"--resume {run_dir}, or give --overwrite to replace it")
    sizes = _sizes(args.set)
    named = load(args.model, **sizes)  # an unknown model or a bad --set is reported before the data is read
    if named.stack:
        from . import cli_stack

        return cli_stack.train(args, named, sizes, run_dir, resume)
    listed = [f"--{name}" for name in ("epochs", "lr") if isinstance(getattr(args, name), tuple)]
    if listed:
        raise DSLError(f"{listed[0]}: one value per level is for stacks; {named.name} is one model")
    if args.finetune_epochs is not None:
        raise DSLError(f"--finetune-epochs: the up-down fine-tuning is for stacks; {named.name} is one model")
    given = dict(method=args.method, k=args.k, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                 momentum=args.momentum, weight_decay=args.weight_decay, **_sparsity(args))
    chosen, recipe, filled = recipes.fill(named, given, args.recipe)
    if chosen["weight_decay"] is None:
        chosen["weight_decay"] = 0.0
    if args.pretrain_epochs is not None and recipe.before is None:
        raise DSLError(f"--pretrain-epochs: recipe '{recipe.name}' has no pretraining (the dbm recipe has)")
    options = dict(**chosen, seed=args.seed, objective=args.objective,
                   labels=args.labels, generative_weight=args.generative_weight)
    if args.temperatures is not None:  # pt's ladder; any other sampler refuses it in one line
        options["temperatures"] = args.temperatures
    if args.hmc:
        options["hmc"] = True
    training_options(**options)  # so are bad options
    sequence = recipe is recipes.SEQUENCE
    prepared = (_sequence_data if sequence else _row_data)(args, named, sizes, options, resume)
    compiled, train, validation = prepared["compiled"], prepared["train"], prepared["validation"]
    model = compiled.model
    training_options(**options).parameter_rates([param.name for param in model.params])  # --lr's names, before -o
    run_dir.mkdir(parents=True, exist_ok=True)
    print(_start_line(args, model, prepared["counted"], options, recipe, filled), flush=True)
    if compiled.standardization is not None:
        print(prepared["standardized"], flush=True)
    if resume:
        print(f"resuming from {resume[0]} after epoch {resume[2]} of {options['epochs']}", flush=True)
    pretraining = []
    try:
        if recipe.before is not None and not resume:
            pretraining = _pretrain(recipe, compiled, train, args)
        history = compiled.fit(train, validation=validation, checkpoint=run_dir / "model.npz", verbose=0,
                               resume=resume[0] if resume else None, callbacks=_epochs_shown(args, options["epochs"]),
                               **recipe.arguments(compiled), **options)
    except KeyboardInterrupt:
        kept = f"; {run_dir / 'model.npz'} holds the last finished epoch" if (run_dir / "model.npz").exists() else ""
        print(f"interrupted{kept} (continue with --resume {run_dir})", file=sys.stderr)
        return 130
    info = {"model": model.name, "sizes": model.arguments, "data": args.data, "labels": args.labels,
            "dtype": args.dtype, "recipe": recipe.name,
            "rows": {"training": runs.row_count(train), "validation": runs.row_count(validation)},
            **prepared["info"],
            "standardized": list(compiled.standardization.layers) if compiled.standardization else [],
            "options": options, **({"pretraining": pretraining} if pretraining else {})}
    written = [run_dir / "model.npz", *runs.write_metrics(history, run_dir, info)]
    if sequence:
        written.append(runs.save_seed_frames(compiled, prepared["seeds"][None], run_dir))
    pictures, notes = runs.save_pictures(compiled, history, run_dir, seed=args.seed, seeds=prepared["seeds"],
                                         rows=train)
    for line in notes:
        print(line)
    print(f"wrote {run_dir}{os.sep}: {', '.join(path.name for path in written + pictures)}")
    if sequence:
        _print_sequence_evaluation(compiled, {"validation": validation} if validation is not None else
                                   {"train": train}, args, run_dir)
        print(f"generate frames with: pgmdsl sample {run_dir} --frames 200 -o frames.png")
    else:
        _print_evaluation(compiled, {"train": train, "validation": validation}, args, run_dir)
        print(f"draw more samples with: pgmdsl sample {run_dir} -n 64")
    return 0


def _pretrain(recipe, compiled, train: dict, args) -> list:
    """The recipe's pretraining (the DBM's, pair by pair), one line a pair; its histories for metrics.json."""
    options = {} if args.pretrain_epochs is None else {"epochs": args.pretrain_epochs}
    rows = next(iter(train.values()))
    histories = recipe.before(compiled, rows, args.seed, **options)
    for number, history in enumerate(histories, start=1):
        print(f"pretrained pair {number} of {len(histories)}: {len(history)} epochs, reconstruction error "
              f"{history[-1]['reconstruction']:.4g}", flush=True)
    return histories


def _row_data(args, named, sizes: dict, options: dict, resume) -> dict:
    """The compiled model and its training and validation rows (a dict per observed layer), standardised, checked.

    Rows are one array (or one per layer with --labels); the validation rows
    are a seeded random fraction; the model's visible size follows the data.
    """
    from . import runs
    from .evaluate.report import check_options
    from .runtime import standardize
    from .runtime.datasets import load_data
    from .runtime.train import as_data, check_support

    data = load_data(args.data, dtype=args.dtype)
    model, note = runs.fit_visible(args.model, sizes, data.shape[1], labels=args.labels)
    if note:
        print(note)
    if resume:
        _same_model(args, resume[1], model)
    data = _with_labels(model, data, args)
    train, validation = runs.split(data, args.validation_fraction, args.seed)
    rows = runs.row_count(train)
    _cap_batch(options, rows, "training rows")
    compiled = model.compile(backend=args.backend, dtype=args.dtype, seed=args.seed)
    check_options(args.ais_runs, args.ais_distributions, args.raise_runs, args.raise_rows, compiled)
    train = as_data(compiled, train)
    validation = as_data(compiled, validation) if validation is not None else None
    compiled.standardization = _standardization(args, resume, compiled, lambda: standardize.fit(compiled, train))
    if compiled.standardization is not None:
        train, validation = (compiled.standardization.apply(part) if part is not None else None
                             for part in (train, validation))
    for part in (train, validation):  # fit checks them too, but only after the run directory is made
        if part is not None:
            check_support(compiled, part)
    held = f", {runs.row_count(validation)} for validation" if validation is not None else ""
    standardized = (f"standardised {', '.join(compiled.standardization.layers)}: each unit to mean 0, standard "
                    "deviation 1 on the training rows (kept with the run, undone for samples; --no-standardize keeps "
                    "the raw values)" if compiled.standardization is not None else "")
    return {"compiled": compiled, "train": train, "validation": validation, "counted": f"{rows} rows{held}",
            "standardized": standardized, "info": {}, "seeds": None}


def _sequence_data(args, named, sizes: dict, options: dict, resume) -> dict:
    """The compiled sequence model and its (past, frame) windows for training and validation, checked.

    The data are sequences (runtime.datasets.load_sequences); the model's
    frame size follows them; validation holds out whole sequences (the end
    of a single one: runs.split_sequences); the frames are standardised
    with the training frames' transform before the windows are cut, so a
    frame meets the same map as the frame layer and as any past frame.
    """
    from . import runs
    from .evaluate.report import check_options
    from .runtime import standardize
    from .runtime.datasets import load_sequences
    from .runtime.sequences import sequence_layers, sequence_structure
    from .runtime.train import check_support

    if args.labels:
        raise DSLError(f"--labels {args.labels}: model {named.name} is a sequence model; its frames take no "
                       "class labels")
    if args.raise_runs:
        raise DSLError("--raise-runs: RAISE is not available for sequence models (their log p(frame | past) is "
                       "exact or AIS per window)")
    frame = sequence_structure(named)[1]
    sequences = load_sequences(args.data, named.layer(frame).size)
    model, note = runs.fit_frames(args.model, sizes, sequences.shape[-1])
    if note:
        print(note)
    if resume:
        _same_model(args, resume[1], model)
    compiled = model.compile(backend=args.backend, dtype=args.dtype, seed=args.seed)
    past, frame = sequence_layers(compiled)
    order = compiled.layers[past]["shape"][0]
    if sequences.shape[1] <= order:
        raise DSLError(f"--data {args.data}: sequences of {sequences.shape[1]} frames; model {model.name} (order "
                       f"{order}) needs at least order + 1 = {order + 1} frames for a window")
    train_sequences, held_sequences = runs.split_sequences(sequences, args.validation_fraction, order)
    frames = runs.as_frames(compiled, train_sequences)
    compiled.standardization = _standardization(args, resume, compiled,
                                                lambda: standardize.fit_frames(compiled, frames))
    train = runs.sequence_windows(compiled, train_sequences)
    validation = runs.sequence_windows(compiled, held_sequences) if held_sequences is not None else None
    rows = runs.row_count(train)
    _cap_batch(options, rows, "training windows")
    check_options(args.ais_runs, args.ais_distributions, 0, args.raise_rows, compiled)
    for part in (train, validation):
        if part is not None:
            check_support(compiled, part)
    counted = f"{rows} windows from {_count(len(train_sequences), 'sequence')}"
    if validation is not None:
        held = (_count(len(held_sequences), "sequence") if len(sequences) > 1 else "the end of the sequence")
        counted += f", {runs.row_count(validation)} for validation from {held}"
    standardized = ""
    if compiled.standardization is not None:
        standardized = (f"standardised {frame} and {past}: each channel to mean 0, standard deviation 1 over the "
                        f"training frames, each past frame alike (kept with the run, undone for samples and "
                        "generated frames; --no-standardize keeps the raw values)")
    info = {"sequences": {"training": len(train_sequences),
                          "validation": 0 if held_sequences is None else len(held_sequences),
                          "frames": sequences.shape[1], "order": order}}
    return {"compiled": compiled, "train": train, "validation": validation, "counted": counted,
            "standardized": standardized, "info": info, "seeds": train_sequences[0, :order]}


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"


def _cap_batch(options: dict, rows: int, what: str) -> None:
    """No batch larger than the training rows: say so and use them all."""
    if options["batch_size"] > rows:
        print(f"batch size {options['batch_size']} is more than the {rows} {what}: using {rows}")
        options["batch_size"] = rows


def _start_line(args, model, counted: str, options: dict, recipe, filled: tuple) -> str:
    """What is trained on what, and how: the options, and which came from the model's recipe."""
    from . import runs
    from .runtime import recipes

    shape = ", ".join(f"{k}={v}" for k, v in model.arguments.items())
    labelled = f" (labels in {args.labels})" if args.labels else ""
    lr = options["lr"]
    rate = _shown_rate(lr)
    if recipe is recipes.DEFAULT and "lr" in filled and lr != runs.DEFAULT_LR:
        rate += " (the default for real-valued units; --lr sets it)"
    momentum = f", momentum {options['momentum']:g}" if options["momentum"] else ""
    line = (f"training {model.name}({shape}) on {args.data}{labelled}: {counted}; {options['method']}-{options['k']}, "
            f"{options['epochs']} epochs, lr {rate}, batch size {options['batch_size']}{momentum}{sparsity_text(options)}")
    if recipe is not recipes.DEFAULT and filled:
        shown = ", ".join(name.replace("_", " ") for name in filled)
        line += f" (recipe '{recipe.name}', {recipe.why}: {shown}; give them to override)"
    return line


def _shown_rate(lr) -> str:
    return ",".join(f"{name}={rate:g}" for name, rate in lr.items()) if isinstance(lr, dict) else f"{lr:g}"


def _standardization(args, resume, compiled, fit):
    """The standardisation of the training data (None: no real-valued layer, or --no-standardize).

    fit: makes it from the training data (rows, or a sequence model's
    frames). A resumed run keeps the one it was trained with (its
    checkpoint's), and refuses to switch: its parameters are in those units.
    """
    from .runtime.checkpoint_contents import fit_standardization

    wanted = None if args.no_standardize else fit()
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
                       "Python, or by a stack's run, which trains again with --overwrite)")
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
                      labels=args.labels, raise_runs=args.raise_runs, raise_rows=args.raise_rows,
                      progress=_interactive(args))
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
    _save_ais_picture(compiled, result["log_z"], run_dir)


def _save_ais_picture(compiled, log_z: dict, run_dir: Path) -> None:
    """ais.png, the histogram of AIS's log importance weights (plots.save_ais_weights), when AIS ran and
    matplotlib is there: the effective sample size in the log Z line says how far to trust it, the picture why."""
    from . import plots

    if log_z["method"] != "ais" or not plots.have_matplotlib():
        return
    path = plots.save_ais_weights(log_z["log_weights"], run_dir / "ais.png",
                                  f"AIS for log Z of {compiled.model.name}: {log_z['runs']} runs x "
                                  f"{log_z['distributions']} distributions")
    print(f"wrote {path} (the runs' log importance weights)")


def _print_sequence_evaluation(compiled, sets: dict, args, run_dir: Path) -> None:
    """A sequence model's evaluation (evaluate.report.evaluate_sequences), printed and written to evaluation.json.

    Log-likelihoods are in the data's units: log p(frame | past) of
    standardised windows less sum(log scale) of the frame layer (the past is
    conditioned on, so its transform does not count); the prediction errors
    stay in the units the model works in.
    """
    import json

    from . import runs
    from .evaluate.report import evaluate_sequences, sequence_lines
    from .runtime import recipes

    distributions = recipes.evaluation_default(compiled, "ais_distributions", args.ais_distributions)
    print("evaluating...", flush=True)
    result = evaluate_sequences(compiled, sets, ais_runs=args.ais_runs, distributions=distributions,
                                force_exact=args.exact, seed=getattr(args, "seed", 0), progress=_interactive(args))
    standardization = compiled.standardization
    if standardization is not None:
        result = runs.in_data_units(result, standardization)
    print("evaluation:")
    for line in sequence_lines(result, " (standardised units)" if standardization is not None else ""):
        print(line)
    if standardization is not None:
        print(f"  (log-likelihoods in the data's units: the standardised frame's less sum(log scale) = "
              f"{standardization.log_jacobian:.4f} nats; prediction errors in standardised units, 1 = a channel's "
              "variance)")
        result = {**result, "standardized": {"layers": list(standardization.layers),
                                             "log_jacobian": standardization.log_jacobian}}
    (run_dir / "evaluation.json").write_text(json.dumps(result, indent=2, default=float), encoding="utf-8")


def sweep_command(args) -> int:
    """Every --grid configuration for every seed as a Dask task (pgmdsl.distributed.sweep); prints the table."""
    from . import distributed
    from .evaluate.report import check_options

    check_options(args.ais_runs, args.ais_distributions)
    grid = distributed.parse_grid(args.grid)
    load(args.model, **{k: v[0] for k, v in grid.items() if k not in distributed.TRAINING_VALUES})
    client = distributed.connect(args.scheduler)
    try:
        print(f"sweep of {args.model}: {len(distributed.configurations(grid, args.seeds))} runs on "
              f"{distributed.worker_threads(client)} workers ({client.dashboard_link})", flush=True)
        rows = distributed.sweep(args.model, args.data, grid, args.output, seeds=args.seeds, client=client,
                                 ais_runs=args.ais_runs, ais_distributions=args.ais_distributions,
                                 validation_fraction=args.validation_fraction, dtype=args.dtype,
                                 on_row=lambda row: print(f"  {row['run']}: {row['status']}", flush=True))
    finally:
        if args.scheduler == "local":
            client.cluster.close()
        client.close()
    def cell(value) -> str:
        return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))

    columns = ["run", "validation_log_likelihood", "train_log_likelihood", "log_z_method", "seconds", "error"]
    print("  ".join(columns))
    for row in rows:
        print("  ".join(cell(row.get(column)) for column in columns))
    print(f"wrote {Path(args.output) / 'results.csv'}")
    return 0


def eval_command(args) -> int:
    from . import runs
    from .evaluate.report import check_options
    from .runtime.checkpoint import load_trained
    from .runtime.datasets import load_data, load_sequences
    from .runtime.sequences import sequence_structure
    from .runtime.train import as_data

    check_options(args.ais_runs, args.ais_distributions, args.raise_runs, args.raise_rows)
    run = Path(args.run)
    checkpoint = run if run.is_file() else run / "model.npz"
    if not checkpoint.is_file():
        raise DSLError(f"no checkpoint at {checkpoint} (make one with: pgmdsl train MODEL --data ... -o {run})")
    compiled = load_trained(checkpoint, backend=args.backend)
    if isinstance(compiled, CompiledStack):
        from . import cli_stack

        return cli_stack.evaluate_command(args, compiled, checkpoint)
    structure = sequence_structure(compiled)
    if structure is not None:
        if args.labels or args.raise_runs:
            option = f"--labels {args.labels}" if args.labels else "--raise-runs"
            raise DSLError(f"{option}: not available for sequence model {compiled.model.name}")
        sequences = load_sequences(args.data, compiled.model.layer(structure[1]).size)
        windows = runs.sequence_windows(compiled, sequences)
        print(f"evaluating {compiled.model.name} from {checkpoint} on {args.data} ({_count(len(sequences), 'sequence')}"
              f", {runs.row_count(windows)} windows)", flush=True)
        _print_sequence_evaluation(compiled, {"data": windows}, args, checkpoint.parent)
        return 0
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
    """Samples from a run: plain, with layers clamped (--clamp), inpainted (--inpaint), or frames (--frames)."""
    from .runtime.checkpoint import load_trained

    run = Path(args.run)
    checkpoint = run if run.is_file() else run / "model.npz"
    if not run.exists():
        raise DSLError(f"no such run directory: {run}")
    if not checkpoint.is_file():
        raise DSLError(f"{run} holds no model.npz (make one with: pgmdsl train MODEL --data ... -o {run})")
    _check_sample_options(args)
    output = Path(args.output) if args.output else None
    if output is not None and output.suffix.lower() not in (".png", ".npy"):
        raise DSLError(f"-o takes a .png or .npy file, got '{output}'")
    compiled = load_trained(checkpoint, backend=args.backend)
    if isinstance(compiled, CompiledStack):
        from . import cli_stack

        return cli_stack.sample_command(args, compiled, checkpoint, output)
    if args.frames is not None:
        return _sample_frames(args, compiled, checkpoint, output)
    if args.inpaint is not None:
        return _sample_inpainted(args, compiled, checkpoint, output)
    return _sample_rows(args, compiled, checkpoint, output)


def _check_sample_options(args) -> None:
    """Refuse numbers out of range and options that do not go together, before the checkpoint is read."""
    from .runtime.options import MAX_SWEEPS

    if (args.n is not None and args.n < 1) or (args.steps is not None and args.steps < 0) or args.seed < 0:
        raise DSLError("-n must be positive, --steps at least 0 and --seed at least 0")
    sequence_only = [name for name, given in (("--seed-frames", args.seed_frames is not None),
                                              ("--gibbs-steps", args.gibbs_steps is not None),
                                              ("--sample-frames", args.sample_frames)) if given]
    if args.frames is None and sequence_only:
        raise DSLError(f"{', '.join(sequence_only)}: only with --frames N (generating a sequence)")
    if args.frames is not None:
        others = [name for name, given in (("-n", args.n is not None), ("--steps", args.steps is not None),
                                           ("--mean", args.mean), ("--clamp", bool(args.clamp)),
                                           ("--inpaint", args.inpaint is not None), ("--hmc", args.hmc)) if given]
        if others:
            raise DSLError(f"--frames generates a sequence frame by frame: {', '.join(others)} "
                           f"{'does' if len(others) == 1 else 'do'} not apply (see --gibbs-steps, --sample-frames and "
                           "--seed-frames)")
        if args.frames < 1:
            raise DSLError(f"--frames must be a positive integer, got {args.frames}")
        if args.gibbs_steps is not None and not 1 <= args.gibbs_steps <= MAX_SWEEPS:
            raise DSLError(f"--gibbs-steps must be from 1 to {MAX_SWEEPS}, got {args.gibbs_steps}")
    if args.inpaint is not None and args.hmc:
        raise DSLError("--inpaint draws every layer exactly: --hmc is for plain and clamped samples")
    if args.inpaint is not None and (args.clamp or args.mean):
        raise DSLError(f"--inpaint does not go with {'--clamp' if args.clamp else '--mean'}: it keeps the known units "
                       "of one layer and samples the rest")
    if (args.inpaint is None) != (args.mask is None):
        raise DSLError("--inpaint FILE.npy and --mask MASK.npy go together (the mask says which units are known)")


def _sample_rows(args, compiled, checkpoint: Path, output: Path | None) -> int:
    """Gibbs samples of the visible layer, with the layers of --clamp held at the rows given."""
    import numpy as np

    from . import plots, runs
    from .runtime.datasets import load_array
    from .runtime.sequences import sequence_structure

    structure = sequence_structure(compiled)
    if structure is not None and not args.clamp:
        raise DSLError(f"model {compiled.model.name} is a sequence model: generate frames with --frames N, or give "
                       f"the past frames with --clamp {structure[0]}=FILE.npy")
    clamp = {}
    for text in args.clamp:
        layer, file = _clamp_argument(text)
        if layer in clamp:
            raise DSLError(f"--clamp {layer}: given twice")
        clamp[layer] = runs.clamp_rows(compiled, layer, load_array(file, f"--clamp {layer}={file}"))
    counts = {len(rows) for rows in clamp.values()} - {1}
    if len(counts) > 1:
        raise DSLError(f"--clamp: the files hold {' and '.join(map(str, sorted(counts)))} rows; give one row or the "
                       "same number of rows in each")
    n = runs.rows_for(counts.pop() if counts else 1, args.n, "--clamp") if clamp else (args.n or 64)
    clamp = {layer: np.broadcast_to(rows, (n,) + rows.shape[1:]).copy() for layer, rows in clamp.items()}
    steps = 1000 if args.steps is None else args.steps
    image = plots.visible_image(compiled)
    free = [name for name, info in compiled.layers.items() if info["role"] == "visible" and name not in clamp]
    layer = image[0] if image and image[0] in free and len(free) > 1 else None
    sampled = layer or (free[0] if len(free) == 1 else None)
    shown = image if image and image[0] == sampled else None
    output = output or checkpoint.parent / f"samples-{n}.{'png' if plots.have_matplotlib() and shown else 'npy'}"
    if output.suffix.lower() == ".png" and shown is None:
        raise DSLError(f"the visible layer of {compiled.model.name} is not an image: write the samples to a .npy file")
    samples = runs.visible_samples(compiled, n, steps, args.seed, means=args.mean, layer=layer, clamp=clamp,
                                   hmc=args.hmc)
    clamped = f" with {', '.join(clamp)} clamped" if clamp else ""
    if output.suffix.lower() == ".npy":
        np.save(output, samples)
    else:
        what = "probabilities" if args.mean else "draws"
        title = f"{shown[0]} after {steps} Gibbs steps{clamped} ({what})"
        plots.save_tiles(samples.reshape((-1,) + shown[1]), output, title, limit=n)
    print(f"wrote {output} ({n} samples after {steps} Gibbs steps{clamped})")
    return 0


def _clamp_argument(text: str) -> tuple[str, str]:
    """--clamp LAYER=FILE as (layer, file)."""
    layer, sep, file = text.partition("=")
    if not sep or not layer.strip() or not file:
        raise DSLError(f"--clamp takes LAYER=FILE.npy, got '{text}'")
    return layer.strip(), file


def _sample_inpainted(args, compiled, checkpoint: Path, output: Path | None) -> int:
    """The rows of --inpaint with the units --mask marks known kept and the others sampled given them."""
    import numpy as np

    from . import plots, runs
    from .runtime.datasets import load_array
    from .runtime.initialize import check_rows

    named, sep, file = args.inpaint.partition("=")
    layer, file = (named.strip(), file) if sep and named.strip() in compiled.layers else (None, args.inpaint)
    layer = runs.inpaint_layer(compiled, layer)
    values = runs.layer_rows(compiled, layer, load_array(file, f"--inpaint {args.inpaint}"), f"--inpaint {file}")
    known = runs.known_mask(load_array(args.mask, f"--mask {args.mask}"), values, f"--mask {args.mask}")
    n = runs.rows_for(len(values), args.n, f"--inpaint {file}")
    check_rows(compiled, n, f"{n} inpainted rows of {compiled.model.name}")
    values, known = (np.broadcast_to(part, (n,) + part.shape[1:]).copy() for part in (values, known))
    steps = 1000 if args.steps is None else args.steps
    image = plots.visible_image(compiled)
    shown = image if image and image[0] == layer else None
    output = output or checkpoint.parent / f"inpainted-{n}.{'png' if plots.have_matplotlib() and shown else 'npy'}"
    if output.suffix.lower() == ".png" and shown is None:
        raise DSLError(f"layer '{layer}' of {compiled.model.name} is not an image: write the rows to a .npy file")
    result = runs.inpaint(compiled, layer, values, known, steps=steps, seed=args.seed)
    if output.suffix.lower() == ".npy":
        np.save(output, result)
    else:
        evidence = np.where(known, values, np.nan).reshape((-1,) + shown[1])
        title = f"{layer} of {compiled.model.name}: the unknown units after {steps} Gibbs steps"
        plots.save_pairs(evidence, result.reshape((-1,) + shown[1]), output, title)
    print(f"wrote {output} ({n} rows of {layer}, {known.mean():.0%} of the units known, the rest after {steps} Gibbs "
          "steps)")
    return 0


def _sample_frames(args, compiled, checkpoint: Path, output: Path | None) -> int:
    """--frames N after the run's seed frames (or --seed-frames): a .npy, a plot of the channels, or a summary."""
    import numpy as np

    from . import plots, runs
    from .runtime.datasets import load_array
    from .runtime.sequences import sequence_structure

    if sequence_structure(compiled) is None:
        raise DSLError(f"--frames: model {compiled.model.name} is not a sequence model (an input layer of past "
                       "frames beside a visible frame layer); draw samples with -n")
    if args.seed_frames:
        seeds = runs.seed_frames(compiled, load_array(args.seed_frames, f"--seed-frames {args.seed_frames}"),
                                 f"--seed-frames {args.seed_frames}")
    else:
        seeds = runs.load_seed_frames(compiled, checkpoint.parent)
    gibbs_steps = 30 if args.gibbs_steps is None else args.gibbs_steps
    frames = runs.generate_frames(compiled, args.frames, seeds, gibbs_steps=gibbs_steps,
                                  mean_field=not args.sample_frames, seed=args.seed)
    how = f"{'sampled frames' if args.sample_frames else 'visible means'}, {gibbs_steps} Gibbs steps a frame"
    seeded = seeds.shape[-2]
    described = f"{args.frames} frames of {frames.shape[-1]} channels after {seeded} seed frames ({how})"
    if output is None:
        print(f"generated {described}:")
        for line in _frame_summary(frames):
            print(line)
        print("(write them with -o FILE.npy, or plot them with -o FILE.png)")
        return 0
    if output.suffix.lower() == ".npy":
        np.save(output, frames)
    else:
        first = (seeds[0], frames[0]) if seeds.ndim == 3 else (seeds, frames)
        several = f" (sequence 1 of {len(seeds)})" if seeds.ndim == 3 else ""
        plots.save_channels(np.concatenate(first), output, f"{compiled.model.name}: {described}{several}",
                            seeded=seeded)
    print(f"wrote {output} ({described})")
    return 0


def _frame_summary(frames, limit: int = 16) -> list[str]:
    """Per-channel mean, standard deviation and range of generated frames, as aligned lines."""
    flat = frames.reshape(-1, frames.shape[-1])
    lines = [f"  {'channel':>7}  {'mean':>9}  {'std':>9}  {'min':>9}  {'max':>9}"]
    for channel in range(min(flat.shape[1], limit)):
        column = flat[:, channel]
        lines.append(f"  {channel:>7}  {column.mean():9.4f}  {column.std():9.4f}  {column.min():9.4f}  "
                     f"{column.max():9.4f}")
    if flat.shape[1] > limit:
        lines.append(f"  ... and {flat.shape[1] - limit} more channels")
    return lines


COMMANDS = {
    "list": (list_command, "the standard library: each model's name and what it is"),
    "check": (check_command, "parse and check a model; print its layers, params, terms and Gibbs schedule"),
    "graph": (graph_command, "draw a model's factor graph (.dot always, .png with matplotlib)"),
    "compile": (compile_command, "print (or write with -o) the generated Python module of a model"),
    "train": (train_command, "train a model on a data set; write its checkpoint, metrics and pictures to a run directory"),
    "sample": (sample_command, "draw samples from a trained run (its model.npz) by Gibbs sampling"),
    "eval": (eval_command, "evaluate a trained run on data: log Z (exact or AIS), log-likelihood, pseudo-likelihood"),
    "sweep": (sweep_command, "train and evaluate a grid of settings over seeds on a Dask cluster; write DIR/results.csv"),
    "cache": (cache_command, "the cache of generated modules: `info` (where, entries, bytes) or `clear` (remove them)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgmdsl", description="Compile, train and evaluate energy-based models written in .dgm")
    parser.add_argument("--version", action="version", version=f"pgmdsl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == "list":
            continue
        if name == "cache":
            sub.add_argument("action", choices=["info", "clear"],
                             help="info: the directory, its entries and bytes; clear: remove the entries")
            continue
        if name == "sample":
            _add_sample_arguments(sub)
            continue
        if name == "eval":
            sub.add_argument("run", metavar="RUN_DIR", help="a directory written by `pgmdsl train` (or its model.npz)")
            sub.add_argument("--data", required=True, metavar="SPEC",
                             help="the rows to evaluate (for a sequence model, sequences), e.g. --data digits or "
                                  "--data walk-test.npy")
            _add_backend_argument(sub, None)
            _add_quiet_argument(sub)
            _add_evaluation_arguments(sub)
            continue
        _add_model_arguments(sub)
        if name == "sweep":
            _add_sweep_arguments(sub)
        if name == "train":
            _add_train_arguments(sub)
        if name == "graph":
            sub.add_argument("-o", "--output", required=True, help="out.dot or out.png")
        if name == "compile":
            sub.add_argument("--backend", default="numpy", help="numpy (CPU) or cupy (GPU)")
            _add_dtype_argument(sub, "the generated module's floating-point type (default float32)")
            sub.add_argument("-o", "--output", help="write the module here instead of printing it")
    return parser


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from .runs import DEFAULT_LR, REAL_VALUED_LR
    from .runtime.datasets import DATA_SPECS
    from .runtime.recipes import RECIPES, SEQUENCE_LR, SLOWER_LR
    from .runtime.recipes.dbm import PRETRAINING

    slower = ", ".join(f"{name} {rate:g}" for name, rate in SLOWER_LR.items())

    parser.add_argument("--data", required=True, metavar="SPEC", help=f"the training data: {DATA_SPECS}")
    parser.add_argument("--method", default=None, choices=["cd", "pcd", "pt"],
                        help="contrastive divergence, persistent CD or parallel tempering (10 temperatures) "
                             "(default: the model's recipe, pcd; cd for sequence models), e.g. --method cd")
    parser.add_argument("--temperatures", type=_temperatures, default=None, metavar="COUNT|BETA,...",
                        help="--method pt's inverse temperatures: a count, geometric from 1 to 0.1 (default 10), "
                             "or the ladder itself including 1, e.g. --temperatures 5 or --temperatures 1,0.6,0.3")
    parser.add_argument("--hmc", action="store_true",
                        help="draw jointly Gaussian layers (an mcRBM's x) by hybrid Monte Carlo, 20 leapfrog steps "
                             "with the step size adapted to 90%% acceptance, instead of exactly: much faster for "
                             "large images (bench/README.md); e.g. pgmdsl train mcrbm --hmc")
    parser.add_argument("--k", type=int, default=None, help="Gibbs sweeps per update (default 1)")
    parser.add_argument("--epochs", type=_epochs, default=None, metavar="N|N,N,...",
                        help="passes over the training rows (default 20; 60 for sequence models; 100 for the dbm "
                             "recipe), e.g. --epochs 100; for a stack one for all levels or one per level: "
                             "--epochs 10,10,30")
    parser.add_argument("--finetune-epochs", type=int, default=None,
                        help="--recipe updown: epochs of the up-down fine-tuning of a stack (default 300)")
    parser.add_argument("--lr", type=_learning_rates, default=None, metavar="RATE|NAME=RATE,...|RATE,RATE,...",
                        help=f"learning rate, one per parameter: W=1,a=0,b=1 (0 freezes one), or for a stack one per "
                             f"level: 0.05,0.05,0.01; default "
                             f"{DEFAULT_LR}, {REAL_VALUED_LR} for models with real-valued (quadratic) observed units, "
                             f"{SEQUENCE_LR} per parameter for sequence models ({slower})")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows per update (default 10; 100 for sequence models), e.g. --batch-size 50")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the initial weights, the split and the sampler (default 0)")
    parser.add_argument("--momentum", type=float, default=None,
                        help="in [0, 1) (default 0; 0.9 for sequence models), e.g. --momentum 0.5")
    parser.add_argument("--weight-decay", type=float, default=None,
                        help="L2 penalty on weight matrices (default 0; 2e-4 for the dbm recipe)")
    parser.add_argument("--sparsity-target", type=_sparsity_targets, default=None, metavar="RATE|LAYER=RATE,...",
                        help="the mean activation each binary hidden layer's bias is pulled to (Lee et al. 2008), or "
                             "one per layer: h=0.05 (a pooling layer by name: p=0.2); default none, 0.02 for the "
                             "detectors of convolutional models (the convolutional recipe)")
    parser.add_argument("--sparsity-cost", type=float, default=None,
                        help="the strength of that pull, a multiplier of the learning rate (default 1 with "
                             "--sparsity-target)")
    parser.add_argument("--recipe", default=None, choices=list(RECIPES),
                        help="how to train (default: chosen by the model's structure; `pgmdsl list` shows each "
                             "model's). " + "; ".join(f"{r.name}: {r.why}" for r in RECIPES.values()))
    parser.add_argument("--pretrain-epochs", type=int, default=None,
                        help="the dbm recipe's layer-wise pretraining: epochs for each pair of layers "
                             f"(default {PRETRAINING['epochs']})")
    _add_dtype_argument(parser)
    _add_backend_argument(parser)
    parser.add_argument("--no-standardize", action="store_true",
                        help="train on the raw values of real-valued (Gaussian) observed layers; by default each "
                             "unit is standardised to mean 0, standard deviation 1 on the training rows")
    parser.add_argument("--objective", default="generative", choices=["generative", "discriminative", "hybrid"],
                        help="log p(data) by CD/PCD (default); log p(labels | rest), exact (needs --labels); or both")
    parser.add_argument("--generative-weight", type=float, default=0.01,
                        help="hybrid objective: weight of the generative step (default 0.01)")
    parser.add_argument("--validation-fraction", type=float, default=0.1,
                        help="rows held out for the free-energy gap (default 0.1; 0 for none); for sequences, whole "
                             "sequences (at least one), or the end of a single sequence")
    parser.add_argument("-o", "--output", metavar="RUN_DIR",
                        help="writes model.npz, metrics.csv, metrics.json and (with matplotlib) PNG pictures here "
                             "(default with --resume: the resumed run's directory)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in -o RUN_DIR (without it, an existing run is an error)")
    _add_quiet_argument(parser)
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue a killed or finished run from its model.npz to --epochs, exactly as if never "
                             "stopped: give the run's model, --set, --data and options again")
    _add_evaluation_arguments(parser)


def _add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    from .runtime.datasets import DATA_SPECS

    parser.add_argument("--data", required=True, metavar="SPEC", help=f"the training data: {DATA_SPECS}")
    parser.add_argument("--grid", action="append", required=True, metavar="NAME=V1,V2,...",
                        help="a setting and its values, once per setting: fit options (lr, k, epochs, batch_size, "
                             "momentum, weight_decay, method) or model sizes, e.g. --grid lr=0.01,0.05 --grid nh=64,128")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of each configuration (default 0)")
    parser.add_argument("--scheduler", default="local", metavar="local|ADDRESS",
                        help="local: a Dask LocalCluster of one worker per core (default); ADDRESS: a running "
                             "scheduler, e.g. tcp://10.0.0.5:8786")
    _add_dtype_argument(parser)
    parser.add_argument("--validation-fraction", type=float, default=0.1,
                        help="rows held out for the held-out log-likelihood the table is sorted by (default 0.1)")
    parser.add_argument("--ais-runs", type=int, default=100,
                        help="AIS runs where log Z cannot be enumerated (default 100; 0: skip)")
    parser.add_argument("--ais-distributions", type=int, default=1000,
                        help="AIS intermediate distributions per run (default 1,000: a sweep ranks runs; evaluate "
                             "the best with `pgmdsl eval` for the 14,500 of the full schedule)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="one run directory per configuration and seed, and results.csv; an existing DIR resumes")


def _add_dtype_argument(parser, help_text: str = "the floating-point type the model trains in (default float32; "
                                                  "float64 for checking)") -> None:
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"], help=help_text)


def _add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true",
                        help="no per-epoch lines and no progress bars: the start, the results and what was written")


def _add_backend_argument(parser: argparse.ArgumentParser, default: str | None = "numpy") -> None:
    shown = f" (default {default})" if default else " (default: the backend the run was trained on)"
    parser.add_argument("--backend", default=default, metavar="NAME",
                        help=f"numpy (CPU) or cupy (an NVIDIA GPU, with pip install cupy){shown}, e.g. --backend cupy")


def _add_evaluation_arguments(parser: argparse.ArgumentParser, default_runs: int = 100) -> None:
    parser.add_argument("--labels", metavar="LAYER", default=None,
                        help="put the data's class labels (digits' 0-9, or a .npz's 'labels') one-hot in this visible "
                             "layer, and report the accuracy of p(LAYER | rest)")
    parser.add_argument("--ais-runs", type=int, default=default_runs,
                        help=f"AIS runs when log Z cannot be enumerated (default {default_runs}; 0: skip)")
    parser.add_argument("--ais-distributions", type=int, default=None,
                        help="intermediate distributions (default: the 14,500 of Salakhutdinov and Murray; 1,000 for "
                             "sequence models, whose AIS runs per window)")
    parser.add_argument("--exact", action="store_true", help="enumerate for log Z even when it is large")
    parser.add_argument("--raise-runs", type=int, default=0,
                        help="RAISE runs per row: a conservative log-likelihood next to AIS's (default 0: none)")
    parser.add_argument("--raise-rows", type=int, default=100, help="how many of the rows RAISE evaluates (default 100)")


def _add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="a directory written by `pgmdsl train` (or its model.npz)")
    _add_backend_argument(parser, None)
    parser.add_argument("-n", type=int, default=None,
                        help="number of samples (default 64, or the rows given to --clamp/--inpaint)")
    parser.add_argument("--steps", type=int, default=None, help="Gibbs sweeps from a random start (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the chains' random start and draws (default 0)")
    parser.add_argument("--mean", action="store_true",
                        help="the visible layer's probabilities given the last state, not draws")
    parser.add_argument("--hmc", action="store_true",
                        help="draw jointly Gaussian layers (an mcRBM's x) by hybrid Monte Carlo transitions instead "
                             "of exactly, as train --hmc")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="FILE.png (tiles; channels over time for --frames) or FILE.npy (rows); default "
                             "RUN_DIR/samples-N.png (inpainted-N.png with --inpaint; a printed summary for --frames)")
    parser.add_argument("--clamp", action="append", default=[], metavar="LAYER=FILE.npy",
                        help="hold LAYER at the rows in FILE (one row for every sample, or n rows) and sample the "
                             "visible layer given them, e.g. --clamp y=label.npy, or a CRBM's --clamp past=windows.npy")
    parser.add_argument("--inpaint", metavar="[LAYER=]FILE.npy",
                        help="rows of the visible layer whose known units (--mask) are kept and the rest sampled, "
                             "e.g. --inpaint digits.npy --mask top-half.npy")
    parser.add_argument("--mask", metavar="MASK.npy",
                        help="with --inpaint: booleans (or 0/1) shaped as the rows or as one row; True = known, "
                             "e.g. --mask top-half.npy")
    parser.add_argument("--frames", type=int, default=None, metavar="N",
                        help="a sequence model: generate N frames after the seed frames, e.g. --frames 200 -o gen.png")
    parser.add_argument("--seed-frames", metavar="FILE.npy",
                        help="with --frames: start after these frames, (T, channels) or (S, T, channels) with T >= "
                             "order (default: the run's seed-frames.npy), e.g. --seed-frames start.npy")
    parser.add_argument("--gibbs-steps", type=int, default=None,
                        help="with --frames: Gibbs sweeps per frame, past clamped (default 30), e.g. --gibbs-steps 50")
    parser.add_argument("--sample-frames", action="store_true",
                        help="with --frames: each frame a draw of the visible layer, not its mean (noisier), e.g. "
                             "--frames 100 --sample-frames")


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
