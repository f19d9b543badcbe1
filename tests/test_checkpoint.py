"""Checkpoints are untrusted data: every damage a user can cause is one DSLError line, nothing runs.

Damaged archives (truncated, bit-flipped), damaged `meta` and `source`,
arrays declaring more than the file holds, parameters that do not fit the
model (missing, extra, misshapen, complex, not numbers, not finite),
damaged training state on resume, and the temporaries a killed save leaves.
"""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

import pgmdsl
from pgmdsl.cli import main
from pgmdsl.errors import DSLError
from pgmdsl.runtime import checkpoint, checkpoint_contents
from pgmdsl.runtime.checkpoint import load_trained
from archives import members, rewrite

BARS = np.array([[1, 1, 0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 1, 1, 0, 0], [1, 0, 1, 0, 1, 0, 1, 0],
                 [0, 1, 0, 1, 0, 1, 0, 1]] * 8, dtype=float)
TRAINING = dict(method="pcd", batch_size=8, momentum=0.5, verbose=0)


def rbm(nv=8, nh=4, dtype="float64"):
    return pgmdsl.load("rbm", nv=nv, nh=nh).compile(dtype=dtype)


@pytest.fixture
def saved(tmp_path):
    """A checkpoint of a trained RBM without training state."""
    compiled = rbm()
    compiled.fit(BARS, epochs=1, batch_size=8, verbose=0)
    return compiled.save(tmp_path / "model.npz")


@pytest.fixture
def resumable(tmp_path):
    """A checkpoint with training state (PCD chains, momentum) written by fit."""
    path = tmp_path / "run.npz"
    rbm().fit(BARS, epochs=2, checkpoint=path, **TRAINING)
    return path


def edit_json(path, member: str, change) -> None:
    """Rewrite the JSON member `member` after `change(document)` edited it in place."""
    def edit(contents):
        document = json.loads(str(contents[member]))
        change(document)
        contents[member] = np.array(json.dumps(document))

    rewrite(path, edit)


def one_line(error: DSLError) -> str:
    assert "\n" not in str(error), str(error)
    return error.message


# ---- 1. damaged archives ----

def _outcome(path):
    """None when the file still loads; else the DSLError. Any other exception fails the test."""
    try:
        checkpoint.read(path)
    except DSLError as error:
        return one_line(error)
    try:
        load_trained(path)
    except DSLError as error:
        return one_line(error)
    return None


def test_a_truncated_checkpoint_is_one_line(saved, tmp_path):
    whole = saved.read_bytes()
    damaged = tmp_path / "truncated.npz"
    for length in sorted({0, 1, 4, 21, 22, 30, 100, len(whole) - 22, len(whole) - 1} |
                         set(range(0, len(whole), max(len(whole) // 60, 1)))):
        damaged.write_bytes(whole[:length])
        message = _outcome(damaged)
        assert message is not None and message.startswith(f"cannot read checkpoint {damaged}: "), (length, message)


def test_a_bit_flipped_checkpoint_is_one_line_or_still_loads(saved, tmp_path):
    whole = saved.read_bytes()
    damaged = tmp_path / "flipped.npz"
    refused = 0
    for position in range(0, len(whole), max(len(whole) // 250, 1)):
        for mask in (0x01 << (position % 8), 0xFF):
            flipped = bytearray(whole)
            flipped[position] ^= mask
            damaged.write_bytes(bytes(flipped))
            refused += _outcome(damaged) is not None
    assert refused > 0


def test_garbage_that_is_no_zip_archive_is_one_line(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    with pytest.raises(DSLError, match=f"cannot read checkpoint {path}: "):
        checkpoint.read(path)


# ---- 2. and 3. meta and source ----

@pytest.mark.parametrize("meta, named", [
    ("{", "meta is not JSON"),
    ("[1, 2]", "meta is not a JSON object"),
    ('"rbm"', "meta is not a JSON object"),
])
def test_meta_that_is_no_json_object_is_one_line(saved, meta, named):
    rewrite(saved, lambda contents: contents.update(meta=np.array(meta)))
    with pytest.raises(DSLError, match=named) as error:
        load_trained(saved)
    one_line(error.value)


@pytest.mark.parametrize("key", ["model", "filename", "sizes", "dtype", "backend", "version"])
def test_meta_missing_a_key_names_it(saved, key):
    edit_json(saved, "meta", lambda meta: meta.pop(key))
    with pytest.raises(DSLError, match=f"meta has no '{key}'") as error:
        load_trained(saved)
    one_line(error.value)


@pytest.mark.parametrize("key, value", [
    ("model", None), ("model", 3), ("filename", ["rbm.dgm"]), ("backend", 5), ("backend", {"name": "numpy"}),
    ("version", 1), ("dtype", "float16"), ("dtype", "object"), ("dtype", 32),
    ("sizes", "nv=8"), ("sizes", [8, 4]), ("sizes", {"nv": "8", "nh": 4}), ("sizes", {"nv": True, "nh": 4}),
    ("sizes", {"nv": 8.0, "nh": 4}), ("sizes", {"nv": -8, "nh": 4}), ("sizes", {"nv": 0, "nh": 4}),
    ("sizes", {"nv": 2**40, "nh": 4}),
])
def test_meta_with_a_key_of_the_wrong_type_names_it(saved, key, value):
    edit_json(saved, "meta", lambda meta: meta.update({key: value}))
    with pytest.raises(DSLError, match=f"meta '{key}' must be ") as error:
        load_trained(saved)
    one_line(error.value)


def test_sizes_that_do_not_fit_the_parameters_are_refused_before_compiling(saved, monkeypatch):
    """Sizes are checked against the stored parameters before compile allocates the initial ones."""
    edit_json(saved, "meta", lambda meta: meta.update(sizes={"nv": 8, "nh": 10**6}))
    monkeypatch.setattr(pgmdsl.Model, "compile", lambda *a, **k: pytest.fail("compiled before checking"))
    with pytest.raises(DSLError, match=r"parameter 'W' has shape \(8, 4\); model rbm\(nv=8, nh=1000000\) "):
        load_trained(saved)


@pytest.mark.parametrize("member, value", [
    ("source", np.arange(3)), ("source", np.array(["model a()", "model b()"])), ("source", np.array(b"model")),
    ("meta", np.zeros(2)), ("meta", np.array(7)),
])
def test_source_and_meta_must_be_text(saved, member, value):
    rewrite(saved, lambda contents: contents.update({member: value}))
    with pytest.raises(DSLError, match=f"member '{member}' must be one text string") as error:
        load_trained(saved)
    one_line(error.value)


def test_a_checkpoint_without_source_is_no_checkpoint(saved):
    rewrite(saved, lambda contents: contents.pop("source"))
    with pytest.raises(DSLError, match="is not a pgmdsl checkpoint"):
        checkpoint.read(saved)


# ---- 4. sizes are checked before anything is read ----

def _npy(header: dict, payload: bytes) -> bytes:
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, header)
    return stream.getvalue() + payload


def _with_member(path, name: str, data: bytes, compression=zipfile.ZIP_STORED) -> None:
    kept = {k: v for k, v in members(path).items() if k != name}
    np.savez(path, **kept)
    with zipfile.ZipFile(path, "a", compression=compression) as archive:
        archive.writestr(f"{name}.npy", data)


def _peak_bytes(function) -> int:
    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_small_file_declaring_a_4_gib_parameter_is_refused_unread(saved):
    header = {"descr": "<f8", "fortran_order": False, "shape": (2**29,)}  # 4 GiB
    _with_member(saved, "param/W", _npy(header, b"\0" * 64))

    def read():
        with pytest.raises(DSLError, match=r"declares 4294971\d+ bytes of arrays in all, over the limit"):
            load_trained(saved)

    assert _peak_bytes(read) < 32 * 2**20


def test_a_member_declaring_more_than_the_budget_is_refused_before_inflating(saved, monkeypatch):
    big = np.zeros(4 * 10**6)  # 32 MB of zeros: a few tens of kB deflated
    kept = members(saved)
    np.savez_compressed(saved, **{**kept, "param/W": big})
    assert saved.stat().st_size < 2**20
    monkeypatch.setattr(checkpoint_contents, "MAX_BYTES", 2**20)

    def read():
        with pytest.raises(DSLError, match=r"declares 320\d{5} bytes of arrays in all, over the limit of 1048576"):
            checkpoint.read(saved)

    assert _peak_bytes(read) < 8 * 2**20


def test_an_object_array_is_refused_from_its_header(saved):
    header = {"descr": "|O", "fortran_order": False, "shape": (1,)}
    _with_member(saved, "param/W", _npy(header, b"\x80\x04K\x01."))  # a pickle, never loaded
    with pytest.raises(DSLError, match=r"member 'param/W.npy' holds Python objects"):
        checkpoint.read(saved)


@pytest.mark.parametrize("header", [
    {"descr": "<f8", "fortran_order": False, "shape": (-1, 4)},
    {"descr": [("a", "<f8"), ("b", "|O")], "fortran_order": False, "shape": (1,)},
])
def test_headers_with_negative_shapes_or_object_fields_are_refused(saved, header):
    _with_member(saved, "param/W", _npy(header, b"\0" * 16))
    with pytest.raises(DSLError, match=r"member 'param/W.npy' "):
        checkpoint.read(saved)


def test_a_member_that_is_no_npy_array_is_refused(saved):
    with zipfile.ZipFile(saved, "a") as archive:
        archive.writestr("notes.txt", b"hello")
    with pytest.raises(DSLError, match=r"member 'notes.txt' is not a .npy array"):
        checkpoint.read(saved)


def test_a_stored_member_whose_sizes_disagree_is_refused(saved):
    data = bytearray(saved.read_bytes())
    directory = data.rfind(b"PK\x01\x02")  # the last member's central directory entry
    size = int.from_bytes(data[directory + 24:directory + 28], "little")
    data[directory + 24:directory + 28] = (size + 1000).to_bytes(4, "little")  # its uncompressed size
    saved.write_bytes(bytes(data))
    with pytest.raises(DSLError, match=f"cannot read checkpoint {saved}: "):
        checkpoint.read(saved)


# ---- 5. parameters must fit the model ----

@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("param/W"), r"parameter 'W' is missing \(model rbm's parameters are W, a, b\)"),
    (lambda c: [c.pop("param/W"), c.pop("param/b")], r"parameter 'W', parameter 'b' are missing"),
    (lambda c: c.update({"param/Z": np.zeros(3)}), r"parameter 'Z' is not one of model rbm's parameters \(W, a, b\)"),
    (lambda c: c.update({"param/W": np.zeros((4, 8))}), r"parameter 'W' has shape \(4, 8\); model rbm\(nv=8, nh=4\) "
                                                         r"declares \(8, 4\)"),
    (lambda c: c.update({"param/W": np.zeros((8, 4)) + 1j}), r"parameter 'W' holds complex values"),
    (lambda c: c.update({"param/W": np.full((8, 4), "x")}), r"parameter 'W' holds <U1 values, not numbers"),
    (lambda c: c.update({"param/W": np.zeros((8, 4), bool)}), r"parameter 'W' holds bool values, not numbers"),
    (lambda c: c.update({"param/W": np.zeros((8, 4), "M8[s]")}), r"parameter 'W' holds datetime64\[s\] values"),
    (lambda c: c["param/W"].__setitem__((1, 2), np.nan), r"parameter 'W' holds NaN or infinite values"),
    (lambda c: c["param/b"].__setitem__(0, -np.inf), r"parameter 'b' holds NaN or infinite values"),
])
def test_parameters_that_do_not_fit_are_refused_by_name(saved, change, message):
    rewrite(saved, change)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning, no cast warning: an error instead
        with pytest.raises(DSLError, match=f"^error: checkpoint {saved}: {message}") as error:
            load_trained(saved)
    one_line(error.value)


def test_values_beyond_the_models_dtype_are_refused(tmp_path):
    compiled = rbm(dtype="float32")
    path = compiled.save(tmp_path / "model.npz")
    rewrite(path, lambda c: c.update({"param/W": np.full((8, 4), 1e300)}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DSLError, match="parameter 'W' holds values beyond float32's range"):
            load_trained(path)


def test_integer_parameters_load_as_the_models_dtype(saved):
    rewrite(saved, lambda c: c.update({"param/W": np.ones((8, 4), dtype=np.int16)}))
    loaded = load_trained(saved)
    assert loaded.params["W"].dtype == np.float64 and np.all(loaded.params["W"] == 1)


def test_eval_of_a_checkpoint_with_nan_is_one_line_and_exit_1(tmp_path, capsys):
    path = pgmdsl.load("rbm", nv=16, nh=4).compile().save(tmp_path / "model.npz")
    rewrite(path, lambda c: c["param/W"].__setitem__((0, 0), np.nan))
    assert main(["eval", str(path), "--data", "bars"]) == 1
    assert capsys.readouterr().err == f"error: checkpoint {path}: parameter 'W' holds NaN or infinite values\n"


def test_a_good_checkpoint_still_round_trips(saved):
    original = checkpoint.read(saved)
    loaded = load_trained(saved)
    for name, value in original["params"].items():
        np.testing.assert_array_equal(loaded.params[name], value)
    assert loaded.model.arguments == {"nv": 8, "nh": 4}


# ---- 6. training state ----

def _state(change):
    return lambda path: edit_json(path, "train/state", change)


def _arrays(change):
    return lambda path: rewrite(path, change)


def _member(name, value):
    return _arrays(lambda contents: contents.update({name: value}))


def _history_row(state, row):
    state["history"][0] = row


DAMAGE = {
    "garbage JSON": (_member("train/state", np.array("{'epoch': 2")), "train/state is not JSON"),
    "not an object": (_member("train/state", np.array("[2]")), "train/state is not a JSON object"),
    "text, not JSON": (_member("train/state", np.arange(2)), "member 'train/state' must be one text"),
    "no rng": (_state(lambda s: s.pop("rng")), "train/state has no 'rng'"),
    "another generator": (_state(lambda s: s.update(rng={**s["rng"], "bit_generator": "MT19937"})),
                          "train/state 'rng' must be a PCG64 generator state"),
    "a fractional rng state": (_state(lambda s: s["rng"]["state"].update(state=1.5)), "'rng' must be a PCG64"),
    "a negative rng state": (_state(lambda s: s["rng"]["state"].update(inc=-1)), "'rng' must be a PCG64"),
    "an oversized rng state": (_state(lambda s: s["rng"]["state"].update(state=2**130)), "'rng' must be a PCG64"),
    "rng without its counter": (_state(lambda s: s["rng"].pop("uinteger")), "'rng' must be a PCG64"),
    "no stream at all": (_state(lambda s: s.update(rng=None)), "has no random stream: neither 'rng'"),
    "both kinds of stream": (_state(lambda s: s.update(workers=[s["rng"], s["rng"]])), "has both 'rng'"),
    "workers of another generator": (_state(lambda s: s.update(rng=None, workers=[{"bit_generator": "MT19937"}])),
                                     "'workers' must be a list of PCG64"),
    "negative epoch": (_state(lambda s: s.update(epoch=-1)), "train/state 'epoch' must be an integer >= 0, got -1"),
    "fractional epoch": (_state(lambda s: s.update(epoch=1.5)), "'epoch' must be an integer >= 0"),
    "epoch as text": (_state(lambda s: s.update(epoch="2")), "'epoch' must be an integer >= 0"),
    "epoch as bool": (_state(lambda s: s.update(epoch=True)), "'epoch' must be an integer >= 0"),
    "no updates": (_state(lambda s: s.pop("updates")), "train/state has no 'updates'"),
    "negative updates": (_state(lambda s: s.update(updates=-8)), "'updates' must be an integer >= 0"),
    "history not a list": (_state(lambda s: s.update(history={"epoch": 1})), "'history' must be a list of"),
    "history row of text": (_state(lambda s: _history_row(s, {"epoch": "one"})), "'history' must be a list of"),
    "history row not a dict": (_state(lambda s: _history_row(s, [1, 2])), "'history' must be a list of"),
    "history shorter than epoch": (_state(lambda s: s["history"].pop()), "holds 1 history rows for 2 epochs"),
    "no options": (_state(lambda s: s.pop("options")), "train/state has no 'options'"),
    "options not an object": (_state(lambda s: s.update(options=[1])), "'options' must be an object"),
    "an option out of range": (_state(lambda s: s["options"].update(lr=-1)), "options: lr must be a positive"),
    "an unknown option": (_state(lambda s: s["options"].update(turbo=True)), "options: unknown option turbo"),
    "activity not an object": (_state(lambda s: s.update(activity=[0.1])), "'activity' must be an object"),
    "activity of no layer": (_state(lambda s: s.update(activity={"q": [0.1]})), "sparsity activity of layer 'q'"),
    "activity ragged": (_state(lambda s: s.update(activity={"h": [[0.1], 0.2]})), "sparsity activity of layer 'h'"),
    "momentum missing": (_arrays(lambda c: c.pop("train/velocity/W")), "momentum 'train/velocity/W' is missing"),
    "momentum extra": (_member("train/velocity/Z", np.zeros(2)), "momentum 'train/velocity/Z' is not"),
    "momentum misshapen": (_member("train/velocity/W", np.zeros(3)), r"momentum 'train/velocity/W' has shape \(3,\)"),
    "momentum NaN": (_arrays(lambda c: c["train/velocity/a"].__setitem__(0, np.nan)),
                     "momentum 'train/velocity/a' holds NaN or infinite values"),
    "momentum complex": (_arrays(lambda c: c.update({"train/velocity/a": c["train/velocity/a"] * 1j})),
                         "momentum 'train/velocity/a' holds complex values"),
    "chains of too few rows": (_arrays(lambda c: c.update({"train/chains/h": c["train/chains/h"][:3]})),
                               r"chains 'train/chains/h' has shape \(3, 4\); the trainer keeps \(8, 4\)"),
    "chains of no layer": (_arrays(lambda c: c.update({"train/chains/q": np.zeros((8, 4))})),
                           "chains 'train/chains/q' is not one of model rbm's layers"),
    "chains infinite": (_arrays(lambda c: c["train/chains/h"].__setitem__((0, 0), np.inf)),
                        "chains 'train/chains/h' holds NaN or infinite values"),
    "chains of mixed forms": (_arrays(lambda c: c.update({"train/chains/v": np.zeros((8, 8))})),
                              "chains hold layers h, v: the trainer keeps either"),
    "parameter NaN": (_arrays(lambda c: c["param/W"].__setitem__((0, 0), np.nan)),
                      "parameter 'W' holds NaN or infinite values"),
    "parameter missing": (_arrays(lambda c: c.pop("param/b")), "parameter 'b' is missing"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_training_state_is_one_line(resumable, case):
    damage, message = DAMAGE[case]
    damage(resumable)
    with pytest.raises(DSLError, match=message) as error:
        checkpoint.resumable(resumable, rbm())
    assert one_line(error.value).startswith(f"checkpoint {resumable}: ")


@pytest.mark.parametrize("case", ["garbage JSON", "no rng", "a fractional rng state", "negative epoch",
                                  "history not a list", "no options", "momentum missing", "momentum misshapen",
                                  "chains of too few rows", "chains infinite", "activity ragged", "parameter missing"])
def test_fit_refuses_to_resume_from_damaged_training_state(resumable, case):
    """Through Trainer.resume (which calls checkpoint.resumable)."""
    damage, message = DAMAGE[case]
    damage(resumable)
    with pytest.raises(DSLError, match=message):
        rbm().fit(BARS, epochs=3, resume=resumable, **TRAINING)


def test_a_checkpoint_of_another_model_does_not_resume(resumable):
    other = pgmdsl.load("rbm", nv=8, nh=5).compile(dtype="float64")
    with pytest.raises(DSLError, match=r"holds model rbm\(nv=8, nh=4\), not rbm\(nv=8, nh=5\)"):
        checkpoint.resumable(resumable, other)


def test_a_checkpoint_without_training_state_does_not_resume(saved):
    with pytest.raises(DSLError, match="holds no training state to resume from"):
        checkpoint.resumable(saved, rbm())


def test_undamaged_training_state_resumes_exactly(resumable, tmp_path):
    resumed = rbm()
    resumed.fit(BARS, epochs=4, resume=resumable, **TRAINING)
    straight = rbm()
    straight.fit(BARS, epochs=4, checkpoint=tmp_path / "straight.npz", **TRAINING)
    for name in straight.params:
        np.testing.assert_array_equal(resumed.params[name], straight.params[name], err_msg=name)


def test_a_dbm_missing_one_of_its_chains_is_refused(tmp_path):
    """A DBM's chains hold every layer it keeps; one dropped would fail mid-sweep."""
    path = tmp_path / "dbm.npz"
    dbm = lambda: pgmdsl.load("dbm", nv=8, n1=4, n2=3).compile(dtype="float64")  # noqa: E731
    dbm().fit(BARS, epochs=1, checkpoint=path, **TRAINING)
    checkpoint.resumable(path, dbm())
    rewrite(path, lambda c: c.pop("train/chains/h2"))
    with pytest.raises(DSLError, match="chains hold layers v: the trainer keeps either h2, v or some of h1"):
        checkpoint.resumable(path, dbm())


def test_sparsity_activity_is_checked_against_the_bias_shape(tmp_path):
    path = tmp_path / "sparse.npz"
    rbm().fit(BARS, epochs=1, checkpoint=path, sparsity_target=0.1, sparsity_cost=0.1, **TRAINING)
    assert checkpoint.resumable(path, rbm())["training"]["activity"]["h"].shape == (4,)
    for value, message in (([0.1, 0.2], r"has shape \(2,\); the trainer keeps \(4,\)"),
                           ([0.1, float("nan"), 0.1, 0.1], "holds NaN or infinite values")):
        edit_json(path, "train/state", lambda s: s["activity"].update(h=value))
        with pytest.raises(DSLError, match=f"sparsity activity of layer 'h' {message}"):
            checkpoint.resumable(path, rbm())


# ---- 7. and 8. saving: atomic, ordinary files, no stale temporaries ----

def _temporaries(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_a_save_leaves_no_temporary_and_honours_the_umask(tmp_path):
    path = rbm().save(tmp_path / "model.npz")
    assert _temporaries(tmp_path) == []
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_failed_save_keeps_the_old_checkpoint_and_no_temporary(saved, monkeypatch):
    before = saved.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        rbm().save(saved)
    assert saved.read_bytes() == before and _temporaries(saved.parent) == []


def test_a_save_killed_midway_leaves_a_hidden_temporary_the_next_save_removes(tmp_path):
    target = tmp_path / "model.npz"
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal
        import numpy as np
        import pgmdsl

        def killed(stream, **arrays):
            stream.write(b"PK half a checkpoint")
            stream.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        np.savez = killed
        pgmdsl.load("rbm", nv=8, nh=4).compile().save({str(target)!r})
    """), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    stale = _temporaries(tmp_path)
    assert len(stale) == 1 and stale[0].startswith(".model.npz.") and not target.exists()
    (tmp_path / ".other.npz.0123456789abcdef.tmp").write_bytes(b"another target's")
    rbm().save(target)
    assert _temporaries(tmp_path) == [".other.npz.0123456789abcdef.tmp"]
    assert load_trained(target).model.arguments == {"nv": 8, "nh": 4}


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="POSIX advisory locks")
def test_the_temporary_of_a_save_in_progress_is_kept(tmp_path):
    """A temporary still locked by a live save (here: this test's lock) is not stale."""
    import fcntl

    target = tmp_path / "model.npz"
    busy = tmp_path / ".model.npz.fedcba9876543210.tmp"
    busy.write_bytes(b"being written")
    with open(busy, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        rbm().save(target)
        assert busy.exists()
    rbm().save(target)
    assert not busy.exists()
