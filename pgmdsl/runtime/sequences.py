"""Sequences for conditional models: (past, frame) windows cut from sequences, and generation frame by frame.

A sequence model (the CRBM of Taylor, Hinton and Roweis) observes one frame
given an input layer holding the frames before it: `input past[order, nv]`
beside `visible v[nv]`. The input layer's first axis is the order, and
past[k] is the frame k + 1 steps back (past[0] the previous frame), so the
windows follow from the layers' declared shapes. Generation is Taylor et
al.'s procedure: with the past clamped, alternate Gibbs sweeps starting from
the previous frame, take the visible mean (or a sample) as the next frame,
and push it into the past.
"""

from __future__ import annotations

import numpy as np

from ..errors import DSLError
from .sampling import sweep_order


def sequence_layers(compiled) -> tuple[str, str]:
    """(input layer, frame layer) of a sequence model: one input of shape (order,) + the frame's shape."""
    inputs = [n for n, info in compiled.layers.items() if info["role"] == "input"]
    frames = [n for n, info in compiled.layers.items() if info["role"] == "visible"]
    name = compiled.model.name
    if len(inputs) != 1 or len(frames) != 1:
        raise DSLError(f"model {name} is not a sequence model: it needs one input layer (the past frames) and one "
                       f"visible layer (the frame); it has inputs {inputs or 'none'} and visible layers {frames}")
    past, frame = inputs[0], frames[0]
    past_shape, frame_shape = tuple(compiled.layers[past]["shape"]), tuple(compiled.layers[frame]["shape"])
    if len(past_shape) != len(frame_shape) + 1 or past_shape[1:] != frame_shape:
        raise DSLError(f"model {name}: input layer '{past}' has shape {past_shape}, not (order,) + the shape "
                       f"{frame_shape} of frame layer '{frame}'")
    return past, frame


def sequence_structure(model) -> tuple[str, str] | None:
    """(input layer, frame layer) when `model` (a Model or a Compiled) is a sequence model, else None.

    Why a Model too: the CLI picks its training recipe and data loader, and a
    checkpoint's standardisation is checked, before anything is compiled; the
    layer table here is the one the generated module would have (LAYERS).
    """
    if not hasattr(model, "module"):
        model = _LayerTable(model)
    try:
        return sequence_layers(model)
    except DSLError:
        return None


class _LayerTable:
    """What sequence_layers reads of a Compiled (`layers`, `model.name`), built from a Model's IR layers."""

    def __init__(self, model):
        self.model = model
        self.layers = {layer.name: {"shape": tuple(layer.shape), "unit": layer.unit, "role": layer.role}
                       for layer in model.layers}


def _as_sequences(compiled, sequences, frame_shape) -> list[np.ndarray]:
    """One sequence (T, ...frame), several (S, T, ...frame), or a list of sequences of any lengths."""
    if isinstance(sequences, (list, tuple)):
        parts = [np.asarray(s, dtype=np.float64) for s in sequences]
    else:
        array = np.asarray(sequences, dtype=np.float64)
        parts = list(array) if array.ndim == len(frame_shape) + 2 else [array]
    result = []
    for number, part in enumerate(parts):
        if part.ndim < 1 or part.shape[1:] != frame_shape:
            flat = part.reshape(len(part), -1) if part.ndim >= 2 else None
            if flat is None or flat.shape[1] != int(np.prod(frame_shape)):
                raise DSLError(f"sequence {number} has frames of shape {part.shape[1:]}; model "
                               f"{compiled.model.name} takes frames of shape {frame_shape}")
            part = flat.reshape((len(part),) + frame_shape)
        if not np.all(np.isfinite(part)):
            raise DSLError(f"sequence {number} contains NaN or infinite values")
        result.append(part)
    return result


def windows(compiled, sequences) -> dict[str, np.ndarray]:
    """The dict of arrays a sequence model trains on: every frame after the first `order` of each sequence,
    with the `order` frames before it (most recent first) as its input row."""
    past, frame = sequence_layers(compiled)
    order = compiled.layers[past]["shape"][0]
    frame_shape = tuple(compiled.layers[frame]["shape"])
    pasts, frames = [], []
    for number, sequence in enumerate(_as_sequences(compiled, sequences, frame_shape)):
        if len(sequence) <= order:
            raise DSLError(f"sequence {number} has {len(sequence)} frames; a window needs order + 1 = {order + 1}")
        steps = len(sequence) - order
        pasts.append(np.stack([sequence[order - 1 - k:order - 1 - k + steps] for k in range(order)], axis=1))
        frames.append(sequence[order:])
    return {past: np.concatenate(pasts), frame: np.concatenate(frames)}


def predict(compiled, past_rows, gibbs_steps: int = 30, mean_field: bool = True, rng=None, start=None):
    """The next frame for each row of past windows: Gibbs with the past clamped, from the previous frame.

    start: where the frame layer's chain begins (default: the most recent past frame).
    """
    past, frame = sequence_layers(compiled)
    xp = compiled.xp
    rng = compiled.random(0) if rng is None else rng
    state = {past: xp.asarray(past_rows, dtype=compiled.dtype)}
    state[frame] = state[past][:, 0] if start is None else xp.asarray(start, dtype=compiled.dtype)
    order = sweep_order(compiled, clamped=(past,))
    for _ in range(gibbs_steps):
        for name in order:
            state[name] = compiled.module_sample(name, state, rng)
    if not mean_field:
        return state[frame]
    hidden = {k: v for k, v in state.items() if k != frame}
    return compiled.module_mean(frame, hidden)


def generate(compiled, n_frames: int, seed_frames, gibbs_steps: int = 30, mean_field: bool = True,
             seed: int = 0) -> np.ndarray:
    """`n_frames` new frames after `seed_frames` ((T, ...frame) with T >= order, or (S, T, ...frame) for S
    sequences generated side by side); each generated frame becomes the newest past frame."""
    past, frame = sequence_layers(compiled)
    order = compiled.layers[past]["shape"][0]
    frame_shape = tuple(compiled.layers[frame]["shape"])
    if not isinstance(n_frames, (int, np.integer)) or isinstance(n_frames, bool) or n_frames < 1:
        raise DSLError(f"generate: n_frames must be a positive integer, got {n_frames!r}")
    seeds = np.asarray(seed_frames, dtype=np.float64)
    single = seeds.ndim == len(frame_shape) + 1
    seeds = seeds[None] if single else seeds
    if seeds.ndim != len(frame_shape) + 2 or seeds.shape[2:] != frame_shape or seeds.shape[1] < order:
        raise DSLError(f"generate: seed_frames must be (T, ...) or (S, T, ...) frames of shape {frame_shape} with "
                       f"T >= order = {order}, got shape {np.asarray(seed_frames).shape}")
    if not np.all(np.isfinite(seeds)):
        raise DSLError("generate: seed_frames contain NaN or infinite values")
    xp = compiled.xp
    rng = compiled.random(seed)
    window = xp.asarray(seeds[:, ::-1][:, :order], dtype=compiled.dtype)  # most recent first
    out = []
    for _ in range(n_frames):
        following = predict(compiled, window, gibbs_steps, mean_field, rng)
        out.append(following)
        window = xp.concatenate([following[:, None], window[:, :-1]], axis=1)
    frames = np.stack([np.asarray(f.get() if hasattr(f, "get") else f) for f in out], axis=1)
    return frames[0] if single else frames
