"""`pgmdsl train`, `sample` and `eval` for a stack (a deep belief network): the commands' steps for models whose
levels train one after another.

Kept apart from cli.py, which parses and dispatches: a stack has no layers
of its own, trains greedily level by level (runtime.recipes.greedy) with
options for every level or one per level (--epochs 10,10,20), may be
fine-tuned by the up-down algorithm (--recipe updown), is saved as one
checkpoint holding every level (runtime.checkpoint), samples by Gibbs
sampling in its top level and one top-down pass, and is evaluated through
its variational lower bound (evaluate.stack) with the top level's log Z.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from .errors import DSLError

# The options a stack takes per level: one value for all, or one per level (comma-separated on the command line).
PER_LEVEL = ("method", "k", "epochs", "lr", "batch_size", "momentum", "weight_decay")


def level_options(model, given: dict) -> list[dict]:
    """One fit() options dict per level: each option given once for all, or as one value per level; each
    level's own default recipe (runtime.recipes: its model's, as if trained alone) fills the rest. A wrong count
    of values is a one-line DSLError."""
    from .runtime import recipes

    levels = len(model.stack)
    for name, value in given.items():
        if isinstance(value, tuple) and len(value) != levels:
            raise DSLError(f"--{name.replace('_', '-')}: {len(value)} values for the {levels} levels of "
                           f"{model.name}; give one for all or one per level")
    result = []
    for number, part in enumerate(model.stack):
        own = {name: value[number] if isinstance(value, tuple) else value for name, value in given.items()}
        chosen, _, _ = recipes.fill(part, own)
        result.append({**chosen, "weight_decay": chosen.get("weight_decay") or 0.0})
    return result


def train(args, named, sizes: dict, run_dir: Path, resume) -> int:
    """Train a stack as `pgmdsl train` does: greedy levels, the recipe's fine-tuning, checkpoint, metrics,
    pictures and the bound."""
    from . import runs
    from .runtime import recipes
    from .runtime.datasets import load_data
    from .runtime.options import options as training_options
    from .runtime.recipes import greedy
    from .runtime.train import as_data, check_support

    if resume:
        raise DSLError(f"--resume: a stack's run ({named.name}) cannot be resumed; train it again with --overwrite")
    refused = [option for option, given in (("--labels", args.labels), ("--temperatures", args.temperatures),
                                            ("--pretrain-epochs", args.pretrain_epochs),
                                            ("--objective", args.objective != "generative"),
                                            ("--raise-runs", args.raise_runs), ("--hmc", getattr(args, "hmc", False))) if given]
    if refused:
        raise DSLError(f"{refused[0]}: not available for stack {named.name} (its levels train one by one)")
    recipe = recipes.choose(named, args.recipe)
    if args.finetune_epochs is not None and recipe.after is None:
        raise DSLError(f"--finetune-epochs: recipe '{recipe.name}' has no fine-tuning (--recipe updown has)")
    from .cli import _sparsity, sparsity_text

    given = {**{name: getattr(args, name) for name in PER_LEVEL}, **_sparsity(args)}
    per_level = level_options(named, given)
    for own in per_level:
        training_options(**own, seed=args.seed)
    data = load_data(args.data, dtype=args.dtype)
    model, note = runs.fit_visible(args.model, sizes, data.shape[1])
    if note:
        print(note)
    stack = model.compile(backend=args.backend, dtype=args.dtype, seed=args.seed)
    bottom = stack.levels[0]
    rows, validation = runs.split(data, args.validation_fraction, args.seed)
    checked = [as_data(bottom, part) if part is not None else None for part in (rows, validation)]
    for part in checked:
        if part is not None:
            check_support(bottom, part)
    rows, validation = (next(iter(part.values())) if part is not None else None for part in checked)
    for own in per_level:
        if own["batch_size"] > len(rows):
            print(f"batch size {own['batch_size']} is more than the {len(rows)} training rows: using {len(rows)}")
            own["batch_size"] = len(rows)
    run_dir.mkdir(parents=True, exist_ok=True)
    held = f", {len(validation)} for validation" if validation is not None else ""
    print(f"training {_described(model)} on {args.data}: {len(rows)} rows{held}; recipe '{recipe.name}', "
          f"{recipe.why}", flush=True)
    for number, (part, own) in enumerate(zip(stack.levels, per_level), start=1):
        print(f"  level {number} {_described(part.model)}: {own['method']}-{own['k']}, {own['epochs']} epochs, "
              f"lr {own['lr']:g}, batch size {own['batch_size']}{sparsity_text(own)}", flush=True)
    checkpoint = run_dir / "model.npz"
    try:
        histories = greedy.stack(stack.levels, rows, [{**own, "seed": args.seed, "verbose": 0} for own in per_level],
                                 validation, callbacks_for=lambda number: [] if args.quiet else
                                 [_level_printer(number, per_level)])
        history = [{"stage": f"level {number}", **row} for number, rows_ in enumerate(histories, start=1)
                   for row in rows_]
        stack.save(checkpoint)
        if recipe.after is not None:
            options = {} if args.finetune_epochs is None else {"epochs": args.finetune_epochs}
            print(f"fine-tuning by the up-down algorithm ({args.finetune_epochs or 'default'} epochs)", flush=True)
            tuned = recipe.after(stack, rows, args.seed, **options)
            print(f"  up-down: reconstruction error {tuned[-1]['reconstruction']:.4g} after {len(tuned)} epochs")
            history += [{"stage": "up-down", **row} for row in tuned]
            stack.save(checkpoint)
    except KeyboardInterrupt:
        print("interrupted: a stack's run keeps no partial checkpoint (train it again with --overwrite)",
              file=sys.stderr)
        return 130
    info = {"model": model.name, "sizes": model.arguments, "data": args.data, "dtype": args.dtype,
            "recipe": recipe.name, "rows": {"training": len(rows), "validation": runs.row_count(validation)},
            "levels": per_level}
    written = [checkpoint, *runs.write_metrics(history, run_dir, info)]
    pictures, notes = _pictures(stack, histories, run_dir, args.seed)
    for line in notes:
        print(line)
    print(f"wrote {run_dir}{os.sep}: {', '.join(path.name for path in written + pictures)}")
    _evaluate(stack, {"train": rows, "validation": validation}, args, run_dir)
    print(f"draw more samples with: pgmdsl sample {run_dir} -n 64")
    return 0


def _described(model) -> str:
    return f"{model.name}({', '.join(f'{k}={v}' for k, v in model.arguments.items())})"


def _level_printer(number: int, per_level: list[dict]):
    epochs, levels = per_level[number]["epochs"], len(per_level)

    def report(compiled, row: dict) -> None:
        print(f"level {number + 1}/{levels} epoch {row['epoch']}/{epochs}  reconstruction "
              f"{row['reconstruction']:.4f}  ({row['seconds']:.2f} s)", flush=True)
    return report


def _pictures(stack, histories, run_dir: Path, seed: int) -> tuple[list[Path], list[str]]:
    """weights.png (the bottom level's), samples.png (the stack's) and curves.png (every level's, in turn)."""
    from . import plots

    if not plots.have_matplotlib():
        return [], ["no pictures: matplotlib is not installed (pip install 'pgmdsl[plot]')"]
    written, notes = [], []
    bottom = stack.levels[0]
    tiles, image = plots.weight_tiles(bottom), plots.visible_image(bottom)
    filters = plots.stack_filters(stack)
    if filters is not None:  # a convolutional DBN: every level's filters, composed into the input image
        written.append(plots.save_tile_panels(
            [(f, f"level {number} filters ({len(f)}, {f.shape[1]}x{f.shape[2]} pixels)")
             for number, f in enumerate(filters, start=1)], run_dir / "weights.png",
            f"{stack.model.name}: higher levels as combinations of the level-1 filters"))
    elif tiles is None:
        notes.append("no weights.png: the bottom level's visible layer is not an image")
    else:
        written.append(plots.save_tiles(tiles, run_dir / "weights.png",
                                        f"level 1 weights of {stack.model.name} ({len(tiles)} hidden units)",
                                        diverging=True))
    if image is None:
        notes.append("no samples.png: the visible layer is not an image")
    else:
        samples = stack.sample(64, steps=1000, seed=seed)
        written.append(plots.save_tiles(np.asarray(samples).reshape((-1,) + image[1]), run_dir / "samples.png",
                                        "1000 Gibbs steps in the top level, then the top-down pass (probabilities)"))
    rows, done = [], 0
    for history in histories:
        rows += [{**row, "epoch": done + row["epoch"]} for row in history]
        done += len(history)
    written.append(plots.save_curves(rows, run_dir / "curves.png",
                                     f"training {stack.model.name}: its {len(histories)} levels one after another"))
    return written, notes


def _evaluate(stack, sets: dict, args, run_dir: Path) -> None:
    """The bound (and the exact log-likelihood where it fits), printed and written to evaluation.json."""
    from .cli import _interactive
    from .evaluate.report import evaluate_stack, lines

    if args.ais_runs == 0 and not args.exact:
        return
    print("evaluating...", flush=True)
    result = evaluate_stack(stack, sets, ais_runs=args.ais_runs, distributions=args.ais_distributions,
                            force_exact=args.exact, reference=sets.get("train"), seed=getattr(args, "seed", 0),
                            progress=_interactive(args))
    if stack.pooled:
        print(f"evaluation of {stack.model.name} (its levels meet at pooling layers, which leave the DBN bound "
              "undefined: log Z and log p(v) of level 1 alone; reconstruction through every level and back):")
    else:
        print(f"evaluation (log Z of the top level; log p(v) >= the variational bound, {stack.model.name}'s up pass "
              "as q, Salakhutdinov and Murray 2008):")
    for line in lines(result):
        print(line)
    (run_dir / "evaluation.json").write_text(json.dumps(result, indent=2, default=float), encoding="utf-8")


def evaluate_command(args, stack, checkpoint: Path) -> int:
    """`pgmdsl eval RUN --data D` for a stack."""
    from .runtime.datasets import load_data

    refused = [o for o, given in (("--labels", args.labels), ("--raise-runs", args.raise_runs)) if given]
    if refused:
        raise DSLError(f"{refused[0]}: not available for stack {stack.model.name} (it is evaluated through its "
                       "variational lower bound)")
    data = load_data(args.data, dtype=stack.dtype.name)
    print(f"evaluating {stack.model.name} from {checkpoint} on {args.data} ({len(data)} rows)", flush=True)
    _evaluate(stack, {"data": data}, args, checkpoint.parent)
    return 0


def sample_command(args, stack, checkpoint: Path, output: Path | None) -> int:
    """`pgmdsl sample RUN` for a stack: Gibbs sampling in the top level, then one top-down pass of means."""
    from . import plots

    refused = [o for o, given in (("--clamp", args.clamp), ("--inpaint", args.inpaint is not None), ("--hmc", args.hmc),
                                  ("--frames", args.frames is not None), ("--mean", args.mean)) if given]
    if refused:
        extra = " (its samples are the top-down pass's means already)" if refused[0] == "--mean" else ""
        raise DSLError(f"{refused[0]}: not available for stack {stack.model.name}{extra}")
    n, steps = args.n or 64, 1000 if args.steps is None else args.steps
    image = plots.visible_image(stack.levels[0])
    output = output or checkpoint.parent / f"samples-{n}.{'png' if plots.have_matplotlib() and image else 'npy'}"
    if output.suffix.lower() == ".png" and image is None:
        raise DSLError(f"the visible layer of {stack.model.name} is not an image: write the samples to a .npy file")
    samples = np.asarray(stack.sample(n, steps=steps, seed=args.seed))
    if output.suffix.lower() == ".npy":
        np.save(output, samples)
    else:
        plots.save_tiles(samples.reshape((-1,) + image[1]), output,
                         f"{steps} Gibbs steps in the top level, then the top-down pass (probabilities)", limit=n)
    print(f"wrote {output} ({n} samples: {steps} Gibbs steps in the top level of {stack.model.name}, then the "
          "top-down pass)")
    return 0
