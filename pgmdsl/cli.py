"""The `pgmdsl` command: check, graph (and later compile, train, sample, eval).

A DSL error prints `file:line:column: error: ...` with a caret line and exits
with status 1, never with a traceback.
"""

from __future__ import annotations

import argparse
import sys
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


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a .dgm file or a standard-library model name (rbm, dbm, ...)")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE", default=[], help="override a size parameter")


def check_command(args) -> int:
    model = load(args.model, **_sizes(args.set))
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


COMMANDS = {
    "check": (check_command, "parse and check a model; print its layers, params, terms and Gibbs schedule"),
    "graph": (graph_command, "draw a model's factor graph (.dot always, .png with matplotlib)"),
    "compile": (compile_command, "print (or write with -o) the generated Python module of a model"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgmdsl", description="Compile, train and evaluate energy-based models written in .dgm")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _add_model_arguments(sub)
        if name == "graph":
            sub.add_argument("-o", "--output", required=True, help="out.dot or out.png")
        if name == "compile":
            sub.add_argument("--backend", default="numpy", help="numpy (CPU) or cupy (GPU)")
            sub.add_argument("--dtype", default="float32", choices=["float32", "float64"])
            sub.add_argument("-o", "--output", help="write the module here instead of printing it")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][0](args)
    except DSLError as error:
        print(error, file=sys.stderr)
        return 1
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
