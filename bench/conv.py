"""CD-1 on a convolutional RBM: pgmdsl's trainer against a hand-written im2col NumPy step.

conv_rbm (C=1, NV=28, K=24, NW=9, pool=2: h is 24 x 20 x 20, probabilistic
max pooling in 2 x 2 blocks), batch 100, synthetic binary images with about
13% ones, a new one of 10 minibatches every step (as in training: no step
reads the rows of the step before). Both programs do the same work per step: hidden probabilities of
the data, a pooled hidden draw from them, a visible sample, hidden
probabilities again, and the update from data minus model statistics.

"generated": `Trainer.update` over the generated module, as `fit` runs it
(mean_h, draw_h, sample_v, mean_h, statistics on both phases at once).
"hand": written here, independently, as a competent NumPy user would: the
patch matrix by sliding_window_view + one copy (im2col) into a buffer that
holds both phases, each field one GEMM, the visible field a GEMM then a
loop over the 81 filter offsets (col2im), probabilistic max pooling on a
(K, B, 10, 2, 10, 2) view, written over its four
block positions, with one uniform per block against their cumulative sums, and the weight gradient one GEMM over both phases.
"GEMM floor": the plain matrix products of the hand-written step's shapes
on contiguous arrays. The three are timed interleaved in one run; reports
medians, the ratio generated / hand, and each one's fraction of the floor.

--digits: one `fit` epoch on scikit-learn's 8x8 digits (1797 images,
binarised at 8/16) with a conv_rbm of NV=8, K=8, NW=5 (h 8 x 4 x 4), pool 2,
batch 10, against the hand-written step over the same minibatches.

    python bench/conv.py [--dtype float32|float64] [--batch 100] [--digits]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, str(Path(__file__).resolve().parent))
BATCHES = 10  # distinct minibatches, taken in turn: no step sees the rows of the step before
from common import interleaved, machine  # noqa: E402

import pgmdsl  # noqa: E402


def hand_written(W, a, b, batches, lr, rng, pool=2):
    """The reference CD-1 step, layout (K, B, y, x) throughout so every GEMM result is used as it lands; each
    call takes the next of `batches` (as training does: a new minibatch every step)."""
    B, C, N, _ = batches[0].shape
    dtype = batches[0].dtype
    taken = [0]
    K, _, R, _ = W.shape
    H = N - R + 1
    patches = np.empty((C * R * R, 2, B * H * H), dtype)  # rows (c, r, s); columns (phase, b, y, x)
    hidden = np.empty((K, 2, B * H * H), dtype)  # h0 and -hk, for the one-GEMM weight gradient

    def sigmoid(x):
        x *= 0.5
        np.tanh(x, out=x)
        x *= 0.5
        x += 0.5
        return x

    def im2col(v, phase):
        windows = sliding_window_view(v, (R, R), axis=(2, 3)).transpose(1, 4, 5, 0, 2, 3)
        np.copyto(patches[:, phase].reshape(C, R, R, B, H, H), windows)
        return patches[:, phase]

    def hidden_means(P):
        f = (W.reshape(K, -1) @ P).reshape(K, B, H // pool, pool, H // pool, pool)
        f += b[:, None, None, None, None, None]
        units = [f[:, :, :, i, :, j] for i in range(pool) for j in range(pool)]  # one view per block position
        top = np.maximum(units[0], 0)
        for unit in units[1:]:
            np.maximum(top, unit, out=top)
        f -= top[:, :, :, None, :, None]
        np.exp(f, out=f)
        total = np.exp(-top)
        for unit in units:
            total += unit
        f /= total[:, :, :, None, :, None]
        return f  # (K, B, H/pool, pool, H/pool, pool)

    def pooled_draw(m):
        u = rng.random((K, B, H // pool, H // pool), dtype=dtype)  # one uniform per block
        hs = np.zeros(m.shape, dtype)
        cum = np.zeros_like(u)
        below = np.zeros(u.shape, bool)
        for i in range(pool):
            for j in range(pool):
                cum += m[:, :, :, i, :, j]
                reached = u < cum  # the chosen unit is the first whose cumulative sum passes u; none: off
                hs[:, :, :, i, :, j] = reached & ~below
                below = reached
        return hs

    def visible_field(hs):
        g = (W.reshape(K, -1).T @ hs.reshape(K, -1)).reshape(C, R, R, B, H, H)
        f = np.zeros((B, C, N, N), dtype)
        for c in range(C):
            for r in range(R):
                for s in range(R):
                    f[:, c, r:r + H, s:s + H] += g[c, r, s]
        f += a[:, None, None]
        return f

    def step():
        v0 = batches[taken[0] % len(batches)]
        taken[0] += 1
        h0 = hidden_means(im2col(v0, 0))
        pv = sigmoid(visible_field(pooled_draw(h0)))
        vk = (rng.random(pv.shape, dtype=dtype) < pv).astype(dtype)
        hk = hidden_means(im2col(vk, 1))
        hidden[:, 0] = h0.reshape(K, -1)
        np.negative(hk.reshape(K, -1), out=hidden[:, 1])
        W[...] += (lr / B) * (hidden.reshape(K, -1) @ patches.reshape(C * R * R, -1).T).reshape(W.shape)
        a[...] += (lr / B) * (v0.sum(axis=(0, 2, 3)) - vk.sum(axis=(0, 2, 3)))
        b[...] += (lr / B) * hidden.sum(axis=(1, 2))

    return step


def generated(compiled, batches, lr):
    """The same step through pgmdsl's trainer (what Compiled.fit runs each minibatch), the next batch each call."""
    from pgmdsl.runtime.train import Trainer

    trainer = Trainer(compiled, np.concatenate(batches), method="cd", batch_size=len(batches[0]), lr=lr, seed=1,
                      verbose=0)
    taken = [0]

    def step():
        trainer.update({"v": batches[taken[0] % len(batches)]}, lr)
        taken[0] += 1
    return step


def gemm_floor(K, C, R, B, H, dtype):
    """The hand-written step's matrix products alone: two hidden fields, the visible field, the gradient."""
    rng = np.random.default_rng(2)
    Wm = rng.random((K, C * R * R), dtype=dtype)
    P = rng.random((C * R * R, 2 * B * H * H), dtype=dtype)
    Hs = rng.random((K, 2 * B * H * H), dtype=dtype)
    half = P[:, : B * H * H]

    def products():
        Wm @ half
        Wm.T @ Hs[:, : B * H * H]
        Wm @ half
        Hs @ P.T

    flops = 2 * K * C * R * R * B * H * H * 5
    return products, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--inner", type=int, default=10)
    parser.add_argument("--digits", action="store_true", help="also time one fit epoch on 8x8 digits")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    sizes = dict(C=1, NV=28, K=24, NW=9, pool=2)
    rng = np.random.default_rng(0)
    batches = [(rng.random((args.batch, 1, 28, 28)) < 0.13).astype(dtype) for _ in range(BATCHES)]
    compiled = pgmdsl.load("conv_rbm", **sizes).compile(dtype=args.dtype)
    W = np.array(compiled.params["W"])
    a, b = np.zeros(1, dtype), np.zeros(24, dtype)
    products, flops = gemm_floor(24, 1, 9, args.batch, 20, dtype)
    steps = {
        "hand CD-1": hand_written(W, a, b, batches, 0.01, np.random.default_rng(1)),
        "generated CD-1": generated(compiled, batches, 0.01),
        "GEMM floor": products,
    }
    times = interleaved(steps, repeats=args.repeats, inner=args.inner)
    floor = times["GEMM floor"]
    print(machine())
    print(f"conv_rbm C=1 NV=28 K=24 NW=9 pool=2, batch {args.batch}, {args.dtype}; median of {args.repeats} x "
          f"{args.inner} steps after warm-up; floor: the step's products, {flops / 1e6:.0f} MFLOP, "
          f"{flops / floor / 1e9:.0f} GFLOP/s")
    for name, seconds in times.items():
        print(f"  {name:15s} {seconds * 1e3:8.2f} ms/step  {floor / seconds:5.0%} of the GEMM floor")
    print(f"  generated / hand-written time = {times['generated CD-1'] / times['hand CD-1']:.3f}  (target <= 1.0)")
    if args.digits:
        digits_epoch(args.dtype, args.repeats)


def digits_epoch(dtype: str, repeats: int) -> None:
    """One fit epoch on 8x8 digits (binarised), against the hand-written step over the same minibatches."""
    from sklearn.datasets import load_digits

    rows = (load_digits().data >= 8).astype(dtype).reshape(-1, 1, 8, 8)
    sizes = dict(C=1, NV=8, K=8, NW=5, pool=2)
    batch = 10
    model = pgmdsl.load("conv_rbm", **sizes)
    chunks = [rows[i:i + batch] for i in range(0, len(rows) - batch + 1, batch)]
    fit_times, hand_times = [], []
    for repeat in range(repeats + 1):
        compiled = model.compile(dtype=dtype)
        start = time.perf_counter()
        compiled.fit(rows, epochs=1, batch_size=batch, lr=0.05, seed=repeat, verbose=0)
        fit_times.append(time.perf_counter() - start)
        W = np.array(model.compile(dtype=dtype).params["W"])
        a, b = np.zeros(1, dtype), np.zeros(8, dtype)
        steps = []
        for chunk in chunks:  # each minibatch's step, its buffers made outside the timing as a user would
            steps.append(hand_written(W, a, b, [np.ascontiguousarray(chunk)], 0.05, np.random.default_rng(repeat)))
        start = time.perf_counter()
        for step in steps:
            step()
        hand_times.append(time.perf_counter() - start)
    fit, hand = statistics.median(fit_times[1:]), statistics.median(hand_times[1:])
    print(f"digits 8x8 ({len(rows)} rows, binarised), conv_rbm C=1 NV=8 K=8 NW=5 pool=2, batch {batch}, {dtype}; "
          f"median of {repeats} epochs")
    print(f"  fit epoch       {fit * 1e3:8.1f} ms  ({fit / len(chunks) * 1e6:.0f} us a minibatch)")
    print(f"  hand epoch      {hand * 1e3:8.1f} ms  ({hand / len(chunks) * 1e6:.0f} us a minibatch)")
    print(f"  fit / hand-written = {fit / hand:.3f}")


if __name__ == "__main__":
    main()
