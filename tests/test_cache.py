"""The cache's location (PGMDSL_CACHE_DIR, else the platform's user cache) and `pgmdsl cache info|clear`."""

import sys

import platformdirs
import pytest

import pgmdsl
from pgmdsl import cache, resources
from pgmdsl.cli import main


@pytest.fixture
def directory(tmp_path, monkeypatch):
    """An empty private cache directory of this test's own."""
    path = tmp_path / "cache"
    monkeypatch.setenv("PGMDSL_CACHE_DIR", str(path))
    return path


def test_the_cache_is_the_platforms_user_cache_unless_pgmdsl_cache_dir_says_otherwise(monkeypatch, tmp_path):
    monkeypatch.setenv("PGMDSL_CACHE_DIR", str(tmp_path / "mine"))
    assert resources.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("PGMDSL_CACHE_DIR")
    assert resources.cache_dir() == type(tmp_path)(platformdirs.user_cache_dir("pgmdsl", appauthor=False))
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # XDG's, as before platformdirs
        assert resources.cache_dir() == tmp_path / "xdg" / "pgmdsl"


def test_the_test_session_never_writes_into_the_users_cache():
    """tests/conftest.py points the whole session (collection included) at a private temporary directory."""
    session = resources.cache_dir()
    assert session != type(session)(platformdirs.user_cache_dir("pgmdsl", appauthor=False))
    assert resources.private_cache_dir() == session and (session.stat().st_mode & 0o077) == 0


def test_entries_are_what_write_wrote_and_nothing_else(directory):
    cache.write("one.py", b"x = 1\n")
    cache.write("two.json", b"{}")
    (directory / "notes.txt").write_text("mine")  # no digest: not the cache's
    (directory / "fake").write_text("mine")
    (directory / "fake.sha256").write_text("not a digest")
    assert [path.name for path in cache.entries(directory)] == ["one.py", "two.json"]
    found, where = cache.usage()[1], cache.usage()[0]
    assert where == directory and [path.name for path in found] == ["one.py", "two.json"]
    assert cache.usage()[2] == sum((directory / name).stat().st_size
                                   for name in ("one.py", "one.py.sha256", "two.json", "two.json.sha256"))


def test_clear_removes_the_entries_and_leaves_everything_else(directory):
    cache.write("one.py", b"x = 1\n")
    cache.write("two.json", b"{}")
    (directory / "notes.txt").write_text("mine")
    assert cache.clear() == (directory, 2)
    assert sorted(path.name for path in directory.iterdir()) == ["notes.txt"]
    assert cache.clear() == (directory, 0)


def test_a_directory_others_can_write_is_neither_counted_nor_cleared(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("PGMDSL_CACHE_DIR", str(shared))
    cache.write("one.py", b"x = 1\n")
    shared.chmod(0o777)
    with pytest.warns(RuntimeWarning, match="not using the cache directory"):
        assert cache.usage() == (shared, None, 0)
    assert cache.clear() == (shared, 0) and (shared / "one.py").exists()


def test_cache_info_and_clear_on_the_command_line(directory, capsys):
    pgmdsl.load("rbm", nv=3, nh=2).compile()  # a generated module, and the parser's tables
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out.splitlines()
    count = len(cache.entries(directory))
    assert count >= 1 and out == [f"cache directory: {directory}", f"entries: {count} ({cache.usage()[2]:,} bytes)"]
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.strip() == f"removed {count} {'entry' if count == 1 else 'entries'} from {directory}"
    assert main(["cache", "info"]) == 0
    assert "entries: 0 (0 bytes)" in capsys.readouterr().out


def test_cache_info_says_why_a_shared_directory_is_not_used(tmp_path, monkeypatch, capsys):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("PGMDSL_CACHE_DIR", str(shared))
    assert main(["cache", "info"]) == 0
    printed = capsys.readouterr()
    assert "(not used: other users can write to it" in printed.out and "Traceback" not in printed.err
