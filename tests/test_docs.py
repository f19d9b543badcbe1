"""Every Python block in docs/ runs: the pages' examples are tested code, block after block in one namespace."""

import re
from pathlib import Path

import pytest

from pgmdsl import units

DOCS = sorted((Path(__file__).resolve().parent.parent / "docs").glob("*.md"))


def python_blocks(path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_python_block_of_a_page_runs(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(units, "_REGISTRY", dict(units._REGISTRY))  # a page's own unit types stay on the page
    namespace = {"__name__": f"docs_{path.stem}"}
    blocks = python_blocks(path)
    assert blocks, f"{path.name} has no python block"
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{path.name} (block {number})", "exec"), namespace)


def test_the_docs_folder_is_found():
    assert any(p.name == "units.md" for p in DOCS)
