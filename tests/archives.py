"""Editing .npz checkpoints in tests, as an attacker or a damaged disk would."""

import numpy as np


def members(path) -> dict:
    """Every member of the .npz at `path`, read with numpy (no pickle)."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def rewrite(path, change) -> None:
    """Rewrite the .npz at `path` with numpy after `change(members)` edited its members in place."""
    contents = members(path)
    change(contents)
    np.savez(path, **contents)
