"""What a file name, an import, a backend name and the cache cannot do (issue 9's findings, one test each).

Each hostile input tries to create a sentinel file; a test passes only if
the sentinel never appears and the failure, if any, is a DSLError.
"""

from __future__ import annotations

import json
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

import pgmdsl
from pgmdsl import cache as cache_store
from pgmdsl import resources
from pgmdsl.codegen.load import cache_key, read_cached
from pgmdsl.runtime.checkpoint import load_trained
from archives import rewrite

RBM = (resources.models_dir() / "rbm.dgm").read_text(encoding="utf-8")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("PGMDSL_CACHE_DIR", str(directory))
    return directory


SENTINEL = "ran"  # relative: a file name's directory part would be cut off before it reaches the code


def _payloads() -> list[str]:
    """File names that become statements if pasted into generated code unescaped (indented for a function body)."""
    statement = f"open({SENTINEL!r}, 'w')"
    return [
        f"a\n    {statement}#.dgm",
        f"a\n{statement}\n#.dgm",
        f'a"""\n{statement}\n"""#.dgm',
        f"a'''\n{statement}\n'''#.dgm",
        f"a\r    {statement}#.dgm",
        f"a\\\n    {statement}#.dgm",
        f"a\u2028    {statement}#.dgm",
        f"a\x0c\n    {statement}#.dgm",
    ]


def _exercise(compiled) -> None:
    """Load the module and call every kernel once, so code hidden in any function would run."""
    state = {name: np.zeros((2,) + tuple(info["shape"])) for name, info in compiled.layers.items()}
    compiled.energy(state)
    compiled.free_energy(state)
    for name in compiled.sampled:
        compiled.mean(name, state)
        compiled.sample_layer(name, state, np.random.default_rng(0))
    compiled.statistics(state)


@pytest.fixture
def sentinel(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path / SENTINEL


def test_a_file_name_given_to_parse_stays_text(sentinel, cache):
    for name in _payloads():
        compiled = pgmdsl.parse(RBM, filename=name, nv=4, nh=3).compile()
        _exercise(compiled)
        assert not sentinel.exists(), name
        compile(compiled.source, "generated", "exec")  # still one valid module


def test_a_file_on_disk_with_a_hostile_name_stays_text(tmp_path, sentinel, cache):
    directory = tmp_path / "models"
    directory.mkdir()
    for number, name in enumerate(_payloads()):
        path = directory / f"{number}{name}"
        path.write_text(RBM, encoding="utf-8")
        _exercise(pgmdsl.load(path, nv=4, nh=3).compile())
    assert not sentinel.exists()


def test_the_cache_key_covers_the_file_name(cache):
    benign = pgmdsl.parse(RBM, filename="rbm.dgm", nv=4, nh=3)
    other = pgmdsl.parse(RBM, filename="other/rbm.dgm", nv=4, nh=3)
    assert cache_key(benign, "numpy", "float32") != cache_key(other, "numpy", "float32")




def _edit_meta(path: Path, **fields) -> None:
    def change(members):
        meta = json.loads(str(members["meta"]))
        meta.update(fields)
        members["meta"] = np.array(json.dumps(meta))

    rewrite(path, change)


def test_a_checkpoints_file_name_stays_text(tmp_path, sentinel, cache):
    path = pgmdsl.load("rbm", nv=4, nh=3).compile(cache=False).save(tmp_path / "model.npz")
    for name in _payloads():
        _edit_meta(path, filename=name)
        _exercise(load_trained(path))
    assert not sentinel.exists()


def test_a_checkpoints_backend_name_is_looked_up_not_joined_into_a_path(tmp_path, cache):
    sentinel = tmp_path / "ran"
    planted = tmp_path / "evil.toml"
    planted.write_text(
        'name = "evil"\ndescription = ""\nprinter = "ArrayPrinter"\nprelude = ["numpy_prelude.py"]\n'
        f"array_module = \"import numpy as xp\\nopen({str(sentinel)!r}, 'w')\"\n",
        encoding="utf-8",
    )
    path = pgmdsl.load("rbm", nv=4, nh=3).compile().save(tmp_path / "model.npz")
    relative = os.path.relpath(tmp_path / "evil", resources.backends_dir())
    for name in (relative, str(tmp_path / "evil"), "numpy/../numpy", "numpy\n", ""):
        _edit_meta(path, backend=name)
        with pytest.raises(pgmdsl.DSLError, match="unknown backend"):
            load_trained(path)
    assert not sentinel.exists()
    with pytest.raises(pgmdsl.DSLError, match="unknown backend"):
        pgmdsl.load("rbm", nv=4, nh=3).compile(backend=relative)


def _entry(cache: Path) -> Path:
    (entry,) = cache.glob("*.py")
    return entry


def test_a_tampered_cache_entry_is_not_run_but_generated_again(tmp_path, cache):
    sentinel = tmp_path / "ran"
    model = pgmdsl.load("rbm", nv=4, nh=3)
    clean = model.compile().source
    entry = _entry(cache)
    entry.write_text(f"open({str(sentinel)!r}, 'w')\n" + clean, encoding="utf-8")
    again = model.compile()
    assert not sentinel.exists()
    assert again.source == clean
    assert entry.read_text(encoding="utf-8") == clean  # the bad entry was replaced


@pytest.mark.parametrize("garbage", [b"", b"\x00\xff\xfe garbage", b"def broken(:\n", b"LAYERS = 1\n"])
def test_an_empty_or_garbage_cache_entry_is_a_miss(cache, garbage):
    model = pgmdsl.load("rbm", nv=4, nh=3)
    clean = model.compile().source
    entry = _entry(cache)
    entry.write_bytes(garbage)
    assert model.compile().source == clean
    assert model.compile().source == clean  # and once regenerated, it is served again


def test_a_garbage_entry_with_a_matching_digest_is_still_a_miss(cache):
    """Even an entry whose digest was forged to match is generated again if it does not load."""
    model = pgmdsl.load("rbm", nv=4, nh=3)
    clean = model.compile().source
    entry = _entry(cache)
    key = entry.stem
    entry.write_bytes(b"LAYERS = (\n")
    digest = cache_store.digest_of(f"{key}.py", b"LAYERS = (\n")
    (cache / f"{key}.py.sha256").write_text(digest, encoding="ascii")
    assert read_cached(key) == "LAYERS = (\n"  # the digest matches: read as an entry...
    assert model.compile().source == clean  # ...but it does not load, so it is regenerated


def test_a_cache_directory_others_can_write_is_not_used(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("PGMDSL_CACHE_DIR", str(shared))
    with pytest.warns(RuntimeWarning, match="other users can write"):
        pgmdsl.load("rbm", nv=4, nh=3).compile()
    assert list(shared.iterdir()) == []


def test_a_cache_file_others_can_write_is_not_trusted(cache):
    model = pgmdsl.load("rbm", nv=4, nh=3)
    model.compile()
    entry = _entry(cache)
    entry.chmod(0o666)
    assert read_cached(entry.stem) is None


def test_the_parser_never_unpickles(cache, monkeypatch):
    """Lark's grammar cache is a pickle: the parser is built from the grammar, and nothing is unpickled."""
    import pickle

    from pgmdsl.frontend import parser

    calls = []

    def record(*args, **kwargs):  # Lark would swallow an exception raised here and rebuild
        calls.append(args)
        raise pickle.UnpicklingError("refused")

    monkeypatch.setattr(pickle, "load", record)
    monkeypatch.setattr(pickle, "loads", record)
    try:
        for _ in range(2):  # the first build could write a grammar cache, the second would load it
            parser._parser.cache_clear()
            parser.parse_text.cache_clear()
            pgmdsl.parse(RBM, "rbm.dgm")
    finally:
        parser._parser.cache_clear()
    assert calls == []


def _fresh_parser():
    from pgmdsl.frontend import parser

    parser._parser.cache_clear()
    parser.parse_text.cache_clear()
    return parser._parser()


def test_the_parser_tables_come_back_from_the_cache_as_json_and_parse_the_same(cache):
    built = _fresh_parser()
    (entry,) = cache.glob("grammar-*.json")
    json.loads(entry.read_text(encoding="utf-8"))  # plain JSON, no pickle
    loaded = _fresh_parser()
    assert loaded is not built
    for path in sorted(resources.models_dir().glob("*.dgm")):
        text = path.read_text(encoding="utf-8")
        assert loaded.parse(text) == built.parse(text)


@pytest.mark.parametrize("garbage", [b"", b"{", b'{"data": 1, "memo": 2}', b"\x80\x04 a pickle"])
def test_damaged_parser_tables_are_rebuilt(cache, garbage):
    _fresh_parser()
    (entry,) = cache.glob("grammar-*.json")
    entry.write_bytes(garbage)
    assert pgmdsl.parse(RBM, "rbm.dgm").name == "rbm"
    (digest,) = cache.glob("grammar-*.json.sha256")
    entry.write_bytes(garbage)  # now with a matching digest: read back, fails to load, rebuilt
    digest.write_text(cache_store.digest_of(entry.name, garbage), encoding="ascii")
    _fresh_parser()
    assert pgmdsl.parse(RBM, "rbm.dgm").name == "rbm"
    assert entry.read_bytes() != garbage


def _importing(directory: Path, body: str = "-a[i]*v[i]") -> Path:
    (directory / "bias.dgm").write_text(f"term bias(a, v) = {body}\n", encoding="utf-8")
    main = directory / "main.dgm"
    main.write_text('import "bias.dgm"\n' + RBM.replace("-a[i]*v[i]", "bias(a, v)"), encoding="utf-8")
    return main


def test_editing_an_imported_file_gives_a_new_module(tmp_path, cache):
    main = _importing(tmp_path)
    first = pgmdsl.load(main, nv=4, nh=3).compile()
    (tmp_path / "bias.dgm").write_text("term bias(a, v) = -2*a[i]*v[i]\n", encoding="utf-8")
    second = pgmdsl.load(main, nv=4, nh=3).compile()
    assert first.source != second.source
    state = {"v": np.ones((1, 4)), "h": np.zeros((1, 3))}
    second.params = dict(first.params)
    assert float(second.energy(state)[0]) == pytest.approx(2 * float(first.energy(state)[0]))


def test_a_checkpoint_carries_its_imports(tmp_path, cache, monkeypatch):
    """The same checkpoint gives the same free energies in another directory, where the import is not."""
    made = tmp_path / "made"
    made.mkdir()
    main = _importing(made, "-3*a[i]*v[i]")
    compiled = pgmdsl.load(main, nv=4, nh=3).compile()
    compiled.params["a"] = np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32)
    path = compiled.save(tmp_path / "model.npz")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "bias.dgm").write_text("term bias(a, v) = -a[i]*v[i]\n", encoding="utf-8")  # a different one
    monkeypatch.chdir(elsewhere)
    (made / "bias.dgm").unlink()
    loaded = load_trained(path)
    state = {"v": np.ones((2, 4))}
    np.testing.assert_array_equal(loaded.free_energy(state), compiled.free_energy(state))


@pytest.mark.parametrize("files, message", [
    ("not json", "files is not JSON"),
    ("[]", "files must be a list"),
    ('[{"name": "m.dgm", "text": "", "imports": []}]', "not its source"),
    ('[{"name": "m.dgm", "text": "x", "imports": [["bias.dgm", 7]]}]', "files must be a list"),
    ('[{"name": 3, "text": "x", "imports": []}]', "files must be a list"),
])
def test_damaged_embedded_files_are_one_error(tmp_path, cache, files, message):
    path = pgmdsl.load("rbm", nv=4, nh=3).compile().save(tmp_path / "model.npz")
    rewrite(path, lambda members: members.update(files=np.array(files)))
    with pytest.raises(pgmdsl.DSLError, match=message):
        load_trained(path)


def test_a_checkpoint_naming_a_model_its_files_lack_is_one_error(tmp_path, cache):
    path = pgmdsl.load("rbm", nv=4, nh=3).compile().save(tmp_path / "model.npz")
    _edit_meta(path, model="nothere")
    with pytest.raises(pgmdsl.DSLError, match="define no model 'nothere'"):
        load_trained(path)


def test_a_checkpoint_from_before_embedded_files_still_loads(tmp_path, cache):
    compiled = pgmdsl.load("rbm", nv=4, nh=3).compile()
    path = compiled.save(tmp_path / "model.npz")
    rewrite(path, lambda members: members.pop("files"))
    state = {"v": np.ones((2, 4))}
    np.testing.assert_array_equal(load_trained(path).free_energy(state), compiled.free_energy(state))


def test_an_import_must_resolve_to_a_regular_dgm_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOKEN=hunter2\n", encoding="utf-8")
    (tmp_path / "env.dgm").symlink_to("/proc/self/environ")
    (tmp_path / "secret.dgm").symlink_to(secret)
    (tmp_path / "folder.dgm").mkdir()
    os.mkfifo(tmp_path / "pipe.dgm")  # reading it would block forever
    for name in ("env.dgm", "secret.dgm", "folder.dgm", "pipe.dgm"):
        main = tmp_path / "main.dgm"
        main.write_text(f'import "{name}"\n' + RBM, encoding="utf-8")
        with pytest.raises(pgmdsl.DSLError, match="not a regular .dgm file") as error:
            pgmdsl.load(main)
        assert "hunter2" not in str(error.value) and "PATH=" not in str(error.value)


def test_an_over_long_import_path_is_one_error(tmp_path):
    main = tmp_path / "main.dgm"
    main.write_text(f'import "{"a" * 5000}.dgm"\n' + RBM, encoding="utf-8")
    with pytest.raises(pgmdsl.DSLError, match="cannot find"):
        pgmdsl.load(main)
    with pytest.raises(pgmdsl.DSLError, match="cannot find"):
        pgmdsl.parse(f'import "{"b" * 5000}.dgm"\n' + RBM)


def test_a_huge_model_file_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.dgm"
    with open(big, "wb") as stream:
        stream.truncate(2 << 20)
    with pytest.raises(pgmdsl.DSLError, match="too large"):
        pgmdsl.load(big)


def _rename(text: str, old: str, new: str) -> str:
    return re.sub(rf"\b{re.escape(old)}\b", new, text)


RENAMES = [  # (model, sizes, name in the model, a name of the generated code's internals)
    ("mcrbm", dict(nv=4, nm=3, nc=3), "hc", "J_u_1"),
    ("mcrbm", dict(nv=4, nm=3, nc=3), "u", "field"),
    ("mcrbm", dict(nv=4, nm=3, nc=3), "R", "precision_x"),
    ("rbm", dict(nv=4, nh=3), "W", "field_h"),
    ("rbm", dict(nv=4, nh=3), "b", "bernoulli_logit"),
    ("rbm", dict(nv=4, nh=3), "a", "stat_W"),
    ("rbm", dict(nv=4, nh=3), "v", "xp"),
    ("rbm", dict(nv=4, nh=3), "h", "t1"),
    ("rbm", dict(nv=4, nh=3), "h", "field_v"),
    ("rbm", dict(nv=4, nh=3), "v", "mean_h"),
    ("dbm", dict(nv=4, n1=3, n2=2), "h1", "h2_h1"),
    ("conv_rbm", dict(C=1, NV=5, K=2, NW=2, pool=2), "p", "pooled_log_partition"),
    ("conv_rbm", dict(C=1, NV=5, K=2, NW=2, pool=2), "W", "W_windows1"),
    ("conv_rbm", dict(C=1, NV=5, K=2, NW=2, pool=2), "b", "batch_size"),
]


@pytest.mark.parametrize("name, sizes, old, new", RENAMES, ids=[f"{m}-{o}-{n}" for m, _, o, n in RENAMES])
def test_renaming_to_a_generated_internal_name_changes_nothing(name, sizes, old, new):
    text = (resources.models_dir() / f"{name}.dgm").read_text(encoding="utf-8")
    original = pgmdsl.parse(text, f"{name}.dgm", **sizes).compile(cache=False, seed=3)
    renamed = pgmdsl.parse(_rename(text, old, new), f"{name}.dgm", **sizes).compile(cache=False, seed=3)
    rng = np.random.default_rng(0)
    state = {n: rng.integers(0, 2, (3,) + tuple(info["shape"])).astype(np.float64)
             for n, info in original.layers.items() if info["role"] != "pooled"}
    moved = {(new if n == old else n): v for n, v in state.items()}
    renamed.params = {(new if n == old else n): v for n, v in original.params.items()}
    np.testing.assert_array_equal(renamed.energy(moved), original.energy(state))
    np.testing.assert_array_equal(renamed.free_energy(moved), original.free_energy(state))
    for layer in original.sampled:
        np.testing.assert_array_equal(renamed.mean(new if layer == old else layer, moved), original.mean(layer, state))
    ours = original.statistics(state)
    theirs = renamed.statistics(moved)
    for param, value in ours.items():
        np.testing.assert_array_equal(theirs[new if param == old else param], value)


def test_a_private_cache_directory_is_made_private(tmp_path, monkeypatch):
    monkeypatch.setenv("PGMDSL_CACHE_DIR", str(tmp_path / "fresh" / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        directory = resources.private_cache_dir()
    assert directory is not None and stat.S_IMODE(directory.stat().st_mode) & 0o077 == 0


def test_the_cli_says_why_it_does_not_use_a_shared_cache(tmp_path, monkeypatch, capsys):
    from pgmdsl.cli import main

    path = pgmdsl.load("rbm", nv=4, nh=3).compile(cache=False).save(tmp_path / "run" / "model.npz")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("PGMDSL_CACHE_DIR", str(shared))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["sample", str(path.parent), "-n", "2", "--steps", "1", "-o", str(tmp_path / "s.npy")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: pgmdsl: not using the cache directory")


@given(st.text())
@settings(max_examples=300, derandomize=True, deadline=None)
def test_escaped_text_stays_a_comment_and_a_docstring(text):
    """Whatever the text, a comment holding it is one comment and a docstring holding it one string."""
    import ast as python_ast

    from pgmdsl.codegen.text import comment_text, docstring_text

    assert python_ast.parse(f"# {comment_text(text)}\n").body == []
    (statement,) = python_ast.parse(f'"""{docstring_text(text)}"""\n').body
    assert isinstance(statement, python_ast.Expr) and isinstance(python_ast.literal_eval(statement.value), str)
    assert "\n" not in comment_text(text) and "\r" not in comment_text(text)
