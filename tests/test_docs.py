"""Every code block in docs/ is checked: the pages' examples are tested code.

A page's fenced blocks run in order, in a temporary directory of their own
(the current directory while they run), python blocks in one namespace per
page. The kind of a block is its fence's info string:

- ```python: executed.
- ```dgm: a model that must parse and build, with
  `pgmdsl.parse(text, filename=...)`. A first line `# file: NAME.dgm` also
  writes the text to NAME.dgm in the page's directory, so that later blocks
  (an import, `pgmdsl.load`, a console command) can read it; without one the
  file name is `<page>_<block>.dgm`.
- ```dgm-error: a model that must fail, at parse and build or, if those
  pass, at compile time; the next block, a ```text block, is exactly what
  the error prints (`str(error)`: file:line:column: error: message, the
  excerpt with its carets, any notes). The file name is `bad.dgm` unless a
  `# file:` line says otherwise.
- ```text: only directly after a dgm-error block (its expected output).
- ```console: each `$ pgmdsl ...` line runs through `pgmdsl.cli.main` and
  must exit 0 (or N, with a trailing `# exit N`); each output line shown
  under a command must be a line of what it printed, `...` standing for any
  text. ```sh: the same, without prompts or output.
- ```console skip, ```sh skip: shown, not run (installation, long runs):
  the explicit exclusions.

Anything else (another language, a command that is not pgmdsl's) fails.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import pgmdsl
from pgmdsl import units
from pgmdsl.cli import main as cli_main

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
DOCS = sorted(DOCS_DIR.glob("*.md"))
KINDS = {"python", "dgm", "dgm-error", "text", "console", "sh"}
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
FILE_LINE = re.compile(r"^# file: ([A-Za-z0-9_.-]+\.dgm)[ \t]*$")
EXIT = re.compile(r"\s+# exit (\d+)\s*$")


def blocks(path: Path) -> list[tuple[str, tuple[str, ...], str, int]]:
    """(kind, flags, text, line of the fence) of every fenced block of a page, in order."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        kind, *flags = match[1].split() or [""]
        found.append((kind, tuple(flags), match[2], text.count("\n", 0, match.start()) + 1))
    return found


def python_blocks(path) -> list[str]:
    return [text for kind, _, text, _ in blocks(path) if kind == "python"]


def _file_name(text: str, default: str) -> str:
    first = text.split("\n", 1)[0]
    match = FILE_LINE.match(first)
    return match[1] if match else default


def _run_dgm(text: str, name: str, directory: Path, where: str) -> None:
    if FILE_LINE.match(text.split("\n", 1)[0]):
        (directory / name).write_text(text, encoding="utf-8")
    try:
        model = pgmdsl.parse(text, filename=name)
    except pgmdsl.DSLError as error:
        pytest.fail(f"{where}: the dgm block does not build:\n{error}")
    model.summary()


def _run_dgm_error(text: str, expected: str, name: str, directory: Path, where: str) -> None:
    if FILE_LINE.match(text.split("\n", 1)[0]):
        (directory / name).write_text(text, encoding="utf-8")
    try:
        pgmdsl.parse(text, filename=name).compile()
    except pgmdsl.DSLError as error:
        shown = str(error).replace(str(directory), ".")
        assert shown.rstrip() == expected.rstrip(), f"{where}: the compiler says\n{shown}\nnot\n{expected}"
        return
    pytest.fail(f"{where}: the dgm-error block compiles")


def _output_pattern(shown: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(part) for part in shown.strip().split("...")))


def _run_commands(kind: str, text: str, where: str, capsys) -> None:
    commands: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if kind == "sh":
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append((line.strip(), []))
        elif line.startswith("$ "):
            commands.append((line[2:].strip(), []))
        elif commands:
            commands[-1][1].append(line)
        elif line.strip():
            pytest.fail(f"{where}: output before any command: {line!r}")
    assert commands, f"{where}: a {kind} block without a command"
    for command, shown in commands:
        exit_match = EXIT.search(command)
        status = int(exit_match[1]) if exit_match else 0
        words = shlex.split(command, comments=True)
        if words[:1] == ["pgmdsl"]:
            argv = words[1:]
        elif words[:3] == ["python", "-m", "pgmdsl"]:
            argv = words[3:]
        else:
            pytest.fail(f"{where}: {command!r} is not a pgmdsl command: mark the block '{kind} skip' to show it unrun")
        capsys.readouterr()
        try:
            returned = cli_main(argv)
        except SystemExit as leaving:  # argparse's own exits (--version, usage errors)
            returned = leaving.code or 0
        output = capsys.readouterr()
        printed = [line.strip() for line in (output.out + output.err).splitlines()]
        assert returned == status, f"{where}: `{command}` exited {returned}, not {status}:\n{output.out}{output.err}"
        for line in shown:
            if line.strip():
                pattern = _output_pattern(line)
                assert any(pattern.fullmatch(p) for p in printed), (
                    f"{where}: `{command}` did not print {line.strip()!r}; it printed:\n{output.out}{output.err}")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_block_of_a_page_runs(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(units, "_REGISTRY", dict(units._REGISTRY))  # a page's own unit types stay on the page
    namespace = {"__name__": f"docs_{path.stem}"}
    found = blocks(path)
    assert found or path.name == "README.md", f"{path.name} has no code block"
    skip_next = False
    for number, (kind, flags, text, line) in enumerate(found, 1):
        where = f"{path.name}:{line} (block {number}, {kind})"
        if skip_next:  # the expected output of the dgm-error block before it
            skip_next = False
            continue
        if "skip" in flags:
            continue
        if kind == "python":
            exec(compile(text, f"{path.name} (block {number})", "exec"), namespace)
        elif kind == "dgm":
            _run_dgm(text, _file_name(text, f"{path.stem}_{number}.dgm"), tmp_path, where)
        elif kind == "dgm-error":
            following = found[number] if number < len(found) else None
            assert following is not None and following[0] == "text", f"{where}: a dgm-error block needs a text block next"
            _run_dgm_error(text, following[2], _file_name(text, "bad.dgm"), tmp_path, where)
            skip_next = True
        elif kind in ("console", "sh"):
            _run_commands(kind, text, where, capsys)
        else:
            pytest.fail(f"{where}: a {kind!r} block outside a dgm-error's expected output")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_block_is_of_a_kind_the_test_knows(path):
    found = blocks(path)
    for number, (kind, flags, _, line) in enumerate(found, 1):
        where = f"{path.name}:{line}"
        assert kind in KINDS, f"{where}: unknown block kind {kind!r} (known: {', '.join(sorted(KINDS))})"
        assert set(flags) <= {"skip"}, f"{where}: unknown flags {flags}"
        assert "skip" not in flags or kind in ("console", "sh"), f"{where}: only console and sh blocks may be skipped"
        if kind == "text":
            assert number > 1 and found[number - 2][0] == "dgm-error", f"{where}: a text block must follow a dgm-error block"


def test_the_docs_folder_is_found():
    assert any(p.name == "units.md" for p in DOCS)


def test_the_index_links_every_page():
    index = (DOCS_DIR / "README.md").read_text(encoding="utf-8")
    for page in DOCS:
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not link {page.name}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_relative_links_lead_to_files(path):
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        assert (path.parent / target.split("#")[0]).exists(), f"{path.name}: the link {target} leads nowhere"


def test_every_construct_of_the_grammar_is_in_the_reference():
    """Each keyword of grammars/dgm.lark, function, initialiser, constraint and unit type appears in
    docs/language.md as code (`...`): a construct added to the grammar without its reference entry fails here."""
    import re as regex

    from pgmdsl import resources
    from pgmdsl.ir.expr import FUNCTIONS

    grammar = resources.grammar_path().read_text(encoding="utf-8")
    keywords = set(regex.findall(r'"([a-z_]+)"', grammar))
    assert {"model", "stack", "pooled", "into", "term", "import"} <= keywords  # the scan reads the grammar
    reference = (DOCS_DIR / "language.md").read_text(encoding="utf-8")
    code = " ".join(regex.findall(r"`([^`\n]+)`", FENCE.sub("", reference))) + " " + " ".join(
        text for kind, _, text, _ in blocks(DOCS_DIR / "language.md"))
    words = set(regex.findall(r"[A-Za-z_]+", code))
    constructs = keywords | set(FUNCTIONS) | {"normal", "uniform", "identity", "logit_mean", "symmetric",
                                              "zero_diagonal"} | {name.split("(")[0] for name in units.names()}
    missing = sorted(c for c in constructs if c not in words)
    assert not missing, f"docs/language.md does not show {missing}"
