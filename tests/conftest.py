"""The whole test session caches into a private temporary directory, never into the user's cache.

PGMDSL_CACHE_DIR is set in pytest_configure, before collection: collecting
already parses models (the parser's tables are a cache entry). The
directory is made with mode 0o700, as resources.private_cache_dir demands
of a cache it will use; subprocesses the tests start inherit it. Tests that
set PGMDSL_CACHE_DIR themselves (monkeypatch) still win for their duration.
"""

import os
import shutil
import tempfile

_SAVED = "_pgmdsl_saved_cache_dir"


def pytest_configure(config):
    directory = tempfile.mkdtemp(prefix="pgmdsl-test-cache-")  # created 0o700
    os.chmod(directory, 0o700)
    setattr(config, _SAVED, (os.environ.get("PGMDSL_CACHE_DIR"), directory))
    os.environ["PGMDSL_CACHE_DIR"] = directory


def pytest_unconfigure(config):
    before, directory = getattr(config, _SAVED)
    if before is None:
        os.environ.pop("PGMDSL_CACHE_DIR", None)
    else:
        os.environ["PGMDSL_CACHE_DIR"] = before
    shutil.rmtree(directory, ignore_errors=True)
