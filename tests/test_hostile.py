"""A hostile .dgm file cannot run code: every attempt to reach Python is a DSLError.

Each file below tries to run `touch MARKER` (or to name Python internals); the
test asserts that loading it raises DSLError and that the marker file was not
created. A second check replaces the builtins eval and exec while the whole
standard library and every hostile file are loaded: the compiler must never
call them.
"""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

import pgmdsl
from pgmdsl import resources
from pgmdsl.frontend.parser import _parser

HEAD = "model m(nv: int = 4, nh: int = 3)\n"
LAYERS = "visible v[nv]: binary\nhidden  h[nh]: binary\n"
PARAMS = "param W[nv, nh] ~ normal(0, 0.01)\n"
ENERGY = "energy = -v[i]*W[i,j]*h[j]\n"

# name -> text; {touch} is replaced by the shell command that would create the marker.
HOSTILE = {
    "import_call_in_energy": HEAD + LAYERS + PARAMS + 'energy = __import__("os").system("{touch}")\n',
    "import_call_as_factor": HEAD + LAYERS + PARAMS + 'energy = -v[i]*W[i,j]*h[j] * __import__("os").system("{touch}")\n',
    "import_call_bare_name": HEAD + LAYERS + PARAMS + "energy = -v[i]*W[i,j]*h[j] * __import__(v[i])\n",
    "os_system": HEAD + LAYERS + PARAMS + 'energy = -v[i]*W[i,j]*h[j] + os.system("{touch}")\n',
    "os_system_in_size": 'model m(nv: int = os.system("{touch}"), nh: int = 3)\n' + LAYERS + PARAMS + ENERGY,
    "os_system_in_initialiser": HEAD + LAYERS + 'param W[nv, nh] ~ os.system("{touch}")\n' + ENERGY,
    "eval_call": HEAD + LAYERS + PARAMS + "energy = -v[i]*W[i,j]*h[j] + eval(\"__import__('os').system('{touch}')\")\n",
    "exec_call": HEAD + LAYERS + PARAMS + "energy = -v[i]*W[i,j]*h[j] + exec(\"import os; os.system('{touch}')\")\n",
    "eval_without_string": HEAD + LAYERS + PARAMS + "energy = -v[i]*W[i,j]*h[j] + eval(v[i])\n",
    "exec_as_initialiser": HEAD + LAYERS + "param W[nv, nh] ~ exec(0, 1)\n" + ENERGY,
    "exec_as_unit_type": HEAD + "visible v[nv]: exec\nhidden  h[nh]: binary\n" + PARAMS + ENERGY,
    "dunder_import_layer": HEAD + "visible __import__[nv]: binary\nhidden  h[nh]: binary\n" + PARAMS
    + "energy = -__import__[i]*W[i,j]*h[j]\n",
    "dunder_class_attribute": HEAD + LAYERS + PARAMS + "energy = -v.__class__[i]*W[i,j]*h[j]\n",
    "dunder_class_param": HEAD + LAYERS + "param __class__[nv, nh] ~ normal(0, 0.01)\n"
    + "energy = -v[i]*__class__[i,j]*h[j]\n",
    "dunder_builtins_size": "model m(__builtins__: int = 4, nh: int = 3)\nvisible v[__builtins__]: binary\n"
    + "hidden  h[nh]: binary\nparam W[__builtins__, nh] ~ normal(0, 0.01)\n" + ENERGY,
    "dunder_index": HEAD + LAYERS + PARAMS + "energy = -v[__import__]*W[__import__,j]*h[j]\n",
    "dunder_term": "term __init__(x, M, y) = -x[i] * M[i,j] * y[j]\n" + HEAD + LAYERS + PARAMS + "energy = __init__(v, W, h)\n",
    "dunder_energy_term": HEAD + LAYERS + PARAMS + "energy:\n    __del__: -v[i]*W[i,j]*h[j]\n",
    "dunder_model": "model __main__(nv: int = 4, nh: int = 3)\n" + LAYERS + PARAMS + ENERGY,
    "dunder_let": HEAD + LAYERS + PARAMS + "let __dict__[j] = v[i]*W[i,j]\nenergy = -__dict__[j]*h[j]\n",
    "dunder_keyword_argument": HEAD + LAYERS + "param W[nv, nh] ~ normal(__import__=0, sd=0.01)\n" + ENERGY,
    "underscore_pooled_layer": "model m(nv: int = 4, nh: int = 4)\n" + "visible v[nv]: binary\n"
    + "hidden  h[nh]: binary pooled(2) into _p\n" + PARAMS + ENERGY,
    "keyword_lambda_layer": HEAD + "visible lambda[nv]: binary\nhidden  h[nh]: binary\n" + PARAMS
    + "energy = -lambda[i]*W[i,j]*h[j]\n",
    "keyword_class_param": HEAD + LAYERS + "param class[nv, nh] ~ normal(0, 0.01)\nenergy = -v[i]*class[i,j]*h[j]\n",
    "keyword_import_model": "model import(nv: int = 4, nh: int = 3)\n" + LAYERS + PARAMS + ENERGY,
    "keyword_def_term": "term def(x, M, y) = -x[i] * M[i,j] * y[j]\n" + HEAD + LAYERS + PARAMS + "energy = def(v, W, h)\n",
    "keyword_none_index": HEAD + LAYERS + PARAMS + "energy = -v[None]*W[None,j]*h[j]\n",
    "keyword_match_size": "model m(match: int = 4, nh: int = 3)\nvisible v[match]: binary\nhidden  h[nh]: binary\n"
    + "param W[match, nh] ~ normal(0, 0.01)\n" + ENERGY,
    "keyword_yield_term_argument": "term bias(b, yield) = -b[i] * yield[i]\n" + HEAD + LAYERS + PARAMS + ENERGY,
    "dotted_layer_name": HEAD + "visible os.path[nv]: binary\nhidden  h[nh]: binary\n" + PARAMS + ENERGY,
    "dotted_call": HEAD + LAYERS + PARAMS + "energy = -v[i]*W[i,j]*h[j] + subprocess.run(v[i])\n",
    "dotted_import_path": 'import os.path\n' + HEAD + LAYERS + PARAMS + ENERGY,
    "semicolon_statement": HEAD + LAYERS + PARAMS + ENERGY.rstrip("\n") + '; import os; os.system("{touch}")\n',
    "backtick_shell": HEAD + LAYERS + PARAMS + "energy = -v[i]*W[i,j]*h[j] + `{touch}`\n",
    "lambda_expression": HEAD + LAYERS + PARAMS + 'energy = (lambda: __import__("os").system("{touch}"))()\n',
    "import_python_file": 'import "evil.py"\n' + HEAD + LAYERS + PARAMS + ENERGY,
    "import_python_file_renamed": 'import "evil.py.dgm"\n' + HEAD + LAYERS + PARAMS + ENERGY,
    "import_proc_environ": 'import "/proc/self/environ"\n' + HEAD + LAYERS + PARAMS + ENERGY,
}
EVIL_PY = 'import os\nos.system("{touch}")\n'


def _write(directory: Path, name: str, marker: Path) -> Path:
    touch = f"touch {marker}"
    (directory / "evil.py").write_text(EVIL_PY.replace("{touch}", touch), encoding="utf-8")
    (directory / "evil.py.dgm").write_text(EVIL_PY.replace("{touch}", touch), encoding="utf-8")
    path = directory / f"{name}.dgm"
    path.write_text(HOSTILE[name].replace("{touch}", touch), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_is_rejected_and_runs_nothing(name, tmp_path):
    marker = tmp_path / "pwned"
    path = _write(tmp_path, name, marker)
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.load(path)
    assert caught.value.line is not None, "a hostile file is reported at a position"
    with pytest.raises(pgmdsl.DSLError):
        pgmdsl.parse(path.read_text(encoding="utf-8"), path.name)
    assert not marker.exists()


def test_no_marker_after_loading_every_hostile_file(tmp_path):
    marker = tmp_path / "pwned"
    for name in HOSTILE:
        with pytest.raises(pgmdsl.DSLError):
            pgmdsl.load(_write(tmp_path, name, marker))
    assert not marker.exists()


def test_eval_and_exec_are_never_called(tmp_path, monkeypatch):
    library = [p.stem for p in sorted(resources.models_dir().glob("*.dgm")) if p.stem != "terms"]
    for name in library:  # first, outside the patch: lazy imports run module code through exec
        pgmdsl.load(name).summary()
    with pytest.raises(pgmdsl.DSLError):
        pgmdsl.load(_write(tmp_path, "os_system", tmp_path / "pwned"))

    calls = []

    def forbidden(which):
        def call(*args, **kwargs):
            calls.append((which, args[:1]))
            raise AssertionError(f"builtins.{which} called while loading a model")

        return call

    _parser.cache_clear()  # build the parser again under the patch, too
    monkeypatch.setattr(builtins, "eval", forbidden("eval"))
    monkeypatch.setattr(builtins, "exec", forbidden("exec"))
    marker = tmp_path / "pwned"
    for name in library:
        model = pgmdsl.load(name)
        model.summary()
    for name in HOSTILE:
        with pytest.raises(pgmdsl.DSLError):
            pgmdsl.load(_write(tmp_path, name, marker))
    monkeypatch.undo()
    assert calls == []
    assert not marker.exists()


def test_imports_cannot_read_other_files_into_error_messages(tmp_path, monkeypatch):
    """An import of a non-.dgm file would otherwise show that file's first line in the syntax error."""
    monkeypatch.setenv("PGMDSL_TEST_SECRET", "hunter2")
    secret = tmp_path / "secret.txt"
    secret.write_text("password = hunter2\n", encoding="utf-8")
    for target in [str(secret), "/proc/self/environ", "/etc/passwd"]:
        text = f'import "{target}"\n' + HEAD + LAYERS + PARAMS + ENERGY
        with pytest.raises(pgmdsl.DSLError) as caught:
            pgmdsl.parse(text, str(tmp_path / "reader.dgm"))
        assert caught.value.message == f"can only import .dgm files, not '{target}'"
        assert "hunter2" not in str(caught.value) and "root:" not in str(caught.value)
