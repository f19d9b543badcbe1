"""The released artefacts: an sdist, a wheel built from that sdist, and the
wheel installed into a fresh virtualenv, used from outside the checkout.

This is the only test that sees pgmdsl the way a user does: the grammar, the
backends and the standard library must come from pgmdsl/_data/ inside the
installed package, never from the checkout's top-level folders.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Taken from the checkout, so a model that the wheel forgets to carry shows up.
STANDARD_MODELS = sorted(p.stem for p in (ROOT / "models").glob("*.dgm") if p.stem != "terms")


def _run(command: list, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited with {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    return result


def _clean_env(venv_dir: Path) -> dict:
    """The environment of a user who has only the venv: no PYTHONPATH that
    could reach the checkout, the venv's bin/ first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}}
    env["PATH"] = f"{venv_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv_dir)
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """Build the sdist from the checkout, then the wheel from the sdist.

    `python -m build` with neither --sdist nor --wheel does exactly that
    (sdist first, wheel from the unpacked sdist), so a file that reaches the
    wheel only because it sits in the checkout cannot hide here.
    --no-isolation uses the hatchling of the running interpreter (it is in the
    `test` extra): no download, about a second.  Without hatchling we fall back
    to an isolated build, which fetches hatchling from the package index.
    """
    dist = tmp_path_factory.mktemp("dist")
    isolation = ["--no-isolation"] if importlib.util.find_spec("hatchling") else []
    _run([sys.executable, "-m", "build", *isolation, "--outdir", dist, ROOT], cwd=dist)
    sdists, wheels = sorted(dist.glob("pgmdsl-*.tar.gz")), sorted(dist.glob("pgmdsl-*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in dist.iterdir())
    return sdists[0], wheels[0]


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> Path:
    """A fresh virtualenv (no --system-site-packages) with the wheel installed.

    pip installs the wheel *with* its dependencies from the configured package
    index, so the wheel's Requires-Dist is what gets tested: an import of a
    package that pyproject.toml does not declare fails here, although the test
    environment (matplotlib, hypothesis, ...) may have it.  Reusing the test
    environment's site-packages through a .pth file would be faster but would
    hide exactly that mistake.  pip's own HTTP/wheel cache keeps repeated runs
    to roughly 10 s (lark, numpy, sympy, mpmath, networkx are all wheels).
    """
    _, wheel = built
    venv_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    python = venv_dir / "bin" / "python"
    _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel],
         cwd=venv_dir, env=_clean_env(venv_dir))
    return venv_dir


@pytest.fixture
def outside(tmp_path) -> Path:
    """A working directory that is not the checkout (so '' on sys.path cannot find it)."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    assert ROOT not in work.resolve().parents
    return work


@pytest.mark.slow
def test_sdist_and_wheel_carry_the_data_folders(built):
    sdist, wheel = built
    with tarfile.open(sdist) as archive:
        sdist_files = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    with zipfile.ZipFile(wheel) as archive:
        wheel_files = set(archive.namelist())
    for name in ("grammars/dgm.lark", "models/rbm.dgm", "models/terms.dgm", "pyproject.toml"):
        assert name in sdist_files, name
    assert "pgmdsl/_data/grammars/dgm.lark" in wheel_files
    assert "pgmdsl/_data/models/rbm.dgm" in wheel_files
    assert "pgmdsl/_data/models/terms.dgm" in wheel_files
    for model in STANDARD_MODELS:
        assert f"pgmdsl/_data/models/{model}.dgm" in wheel_files, model
    assert any(name.startswith("pgmdsl/_data/backends/") for name in wheel_files)
    assert "pgmdsl/cli.py" in wheel_files
    for module in ("__init__", "transformer", "classifier", "_common"):  # a subpackage, not a module
        assert f"pgmdsl/sklearn/{module}.py" in wheel_files, module
    # Nothing from the checkout's tests or benchmarks leaks into the wheel.
    assert not any(name.startswith(("tests/", "bench/")) for name in wheel_files)


@pytest.mark.slow
def test_the_artefacts_carry_the_license_and_the_project_metadata(built):
    """MIT, as pyproject says, in the sdist and the wheel; the classifiers and platformdirs in METADATA (no project
    URL: the project has no public address yet, and an invented one would send users nowhere)."""
    sdist, wheel = built
    with tarfile.open(sdist) as archive:
        assert any(name.endswith("/LICENSE") and name.count("/") == 1 for name in archive.getnames())
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        licenses = [name for name in names if ".dist-info/" in name and name.endswith("LICENSE")]
        assert licenses and "MIT License" in archive.read(licenses[0]).decode()
        metadata = archive.read(next(name for name in names if name.endswith(".dist-info/METADATA"))).decode()
    assert "Copyright (c) 2026 pgmdsl authors" in (ROOT / "LICENSE").read_text()
    assert "Project-URL" not in metadata
    assert "Classifier: License :: OSI Approved :: MIT License" in metadata
    assert "Requires-Dist: platformdirs" in metadata


@pytest.mark.slow
def test_installed_command_checks_every_standard_model(installed, outside):
    env = _clean_env(installed)
    pgmdsl = installed / "bin" / "pgmdsl"
    rbm = _run([pgmdsl, "check", "rbm"], cwd=outside, env=env)
    assert "model rbm(nv=784, nh=500)" in rbm.stdout
    assert "gibbs schedule:" in rbm.stdout
    # The summary names the file it loaded: it must be the packaged copy.
    assert str(installed) in rbm.stdout and str(ROOT) not in rbm.stdout
    for model in STANDARD_MODELS:
        result = _run([pgmdsl, "check", model], cwd=outside, env=env)
        assert f"model {model}(" in result.stdout, result.stdout


@pytest.mark.slow
def test_installed_package_uses_its_own_data(installed, outside):
    snippet = textwrap.dedent(
        """
        import sys
        from pathlib import Path

        import pgmdsl
        from pgmdsl import resources

        venv, checkout, expected = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), sys.argv[3:]
        package = Path(pgmdsl.__file__).resolve().parent
        assert venv in package.parents, (package, venv)
        assert checkout not in package.parents and package != checkout, package
        data = package / "_data"
        assert resources.models_dir().resolve() == data / "models", resources.models_dir()
        assert resources.grammar_path().resolve() == data / "grammars" / "dgm.lark", resources.grammar_path()
        assert resources.backends_dir().resolve() == data / "backends", resources.backends_dir()
        assert resources.standard_models() == expected, (resources.standard_models(), expected)
        for name in resources.standard_models():
            model = pgmdsl.load(name)
            assert model.summary()
        print("loaded", len(expected), "models from", data)
        """
    )
    result = _run([installed / "bin" / "python", "-c", snippet, installed, ROOT, *STANDARD_MODELS],
                  cwd=outside, env=_clean_env(installed))
    assert f"loaded {len(STANDARD_MODELS)} models" in result.stdout
