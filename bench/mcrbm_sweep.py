"""Gibbs sweeps of the mean-covariance RBM: the joint-Gaussian x given hm and hc.

mcRBM 64/50/64 (nv=64, nm=50, nc=64, models/mcrbm.dgm), 64 chains. One full
Gibbs sweep: hm and hc given x (independent binary units), then x given hm
and hc: one 64-dimensional Gaussian per chain with precision
I + R diag(hc) R^T, drawn exactly through its Cholesky factor.

Programs, timed interleaved in one run (medians):

- "generated": the generated module's sample_hm, sample_hc, sample_x, with
  the prelude's kernels (one batched Cholesky, then forward and back
  substitution vectorised over the chains: no general solve).
- "before": sample_x as generated before this change, with the previous
  kernels (both copied below): the precisions with an extra temporary and a
  copy for beta, then Cholesky and two general batched solves
  (xp.linalg.solve) with the triangular factor.
- "hand": a hand-written NumPy sweep: R's outer products formed once, the
  precisions by one GEMM, then per chain LAPACK's potrf and two trtrs.

Then the x-kernels alone on the same precisions: NumPy's batched Cholesky,
the previous kernels, the prelude's (on NumPy arrays: a loop over the chains
calling LAPACK's potrf and trtrs through scipy, with no copies), a plain
scipy loop, and the prelude's array-module path (forward and back
substitution, n steps vectorised over the chains: what CuPy arrays take),
timed on NumPy.

    python bench/mcrbm_sweep.py [--dtype float64 float32] [--chains 64] [--repeats 7] [--inner 20]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.linalg.lapack as lapack

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, machine  # noqa: E402

import pgmdsl  # noqa: E402

xp = np


# ---- the previous kernels (backends/numpy_prelude.py before the change), the "before" ----

def old_gaussian_joint_mean(field, precision):
    """Mean of N(P^-1 f, P^-1) for a batch of precisions P (Cholesky solve)."""
    chol = xp.linalg.cholesky(precision)
    y = xp.linalg.solve(chol, field[..., None])
    return xp.linalg.solve(xp.swapaxes(chol, -1, -2), y)[..., 0]


def old_gaussian_joint_sample(field, precision, rng):
    """Exact draw from N(P^-1 f, P^-1): mean + L^-T z with P = L L^T."""
    chol = xp.linalg.cholesky(precision)
    z = rng.standard_normal(field.shape, dtype=field.dtype)
    y = xp.linalg.solve(chol, field[..., None])
    return xp.linalg.solve(xp.swapaxes(chol, -1, -2), y + z[..., None])[..., 0]


def old_gaussian_joint_log_partition(field, precision):
    """log of the integral of exp(f.x - x^T P x / 2): f^T P^-1 f / 2 - log det P / 2 + n log(2 pi) / 2."""
    chol = xp.linalg.cholesky(precision)
    y = xp.linalg.solve(chol, field[..., None])[..., 0]
    log_det = 2 * xp.sum(xp.log(xp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    return 0.5 * xp.sum(y * y, axis=-1) - 0.5 * log_det + 0.5 * field.shape[-1] * xp.log(2 * xp.pi)


def old_precision_x(p, s, DTYPE):
    """precision_x as generated before (models/mcrbm.dgm at 64/50/64)."""
    _R = p['R']
    _hc = s['hc']
    precision = xp.full((64,), 1, dtype=DTYPE)
    J_u_1 = _R
    t1 = xp.einsum('ik,jk->ijk', J_u_1, J_u_1)
    coupling = xp.tensordot(_hc, t1, axes=((1,), (2,)))
    coupling = xp.reshape(coupling, (-1, 64, 64))
    diagonal = xp.broadcast_to(xp.reshape(precision, (-1, 64)), (coupling.shape[0], 64))
    return coupling + diagonal[:, :, None] * xp.eye(64, dtype=DTYPE)


def old_sample_x(module, p, s, rng, beta=1.0):
    """sample_x as generated before (no annealing here)."""
    field = module.field_x(p, s)
    field = xp.reshape(field, (-1, 64))
    precision = beta * old_precision_x(p, s, field.dtype)
    return xp.reshape(old_gaussian_joint_sample(field, precision, rng), (-1,) + (64,))


# ---- the hand-written sweep ----

def hand_sweep(p, s, rng, dtype):
    """What one writes by hand: R's outer products once (R is fixed while sampling), one GEMM for the
    precisions, the diagonal added in place, then per chain LAPACK's potrf and two trtrs."""
    W, R, bm, bc = p["W"], p["R"], p["bm"], p["bc"]
    n = R.shape[0]
    outer = np.einsum("ik,jk->kij", R, R).reshape(R.shape[1], n * n)
    potrf, trtrs = lapack.get_lapack_funcs(("potrf", "trtrs"), (outer,))

    def sweep():
        x = s["x"]
        hm = (rng.random((x.shape[0], W.shape[1]), dtype=dtype) < 1 / (1 + np.exp(-(x @ W + bm)))).astype(dtype)
        u = x @ R
        hc = (rng.random(u.shape, dtype=dtype) < 1 / (1 + np.exp(-(bc - 0.5 * u * u)))).astype(dtype)
        precision = hc @ outer
        precision[:, ::n + 1] += 1
        field = hm @ W.T
        z = rng.standard_normal(x.shape, dtype=dtype)
        out = np.empty_like(x)
        for r in range(x.shape[0]):
            chol, _ = potrf(precision[r].reshape(n, n), lower=1, clean=0)
            y = trtrs(chol, field[r], lower=1)[0]
            out[r] = trtrs(chol, y + z[r], lower=1, trans=1)[0]
        s["x"], s["hm"], s["hc"] = out, hm, hc

    return sweep


def module_sweep(module, p, s, rng, before=False):
    def sweep():
        s["hm"] = module.sample_hm(p, s, rng)
        s["hc"] = module.sample_hc(p, s, rng)
        s["x"] = old_sample_x(module, p, s, rng) if before else module.sample_x(p, s, rng)

    return sweep


def lapack_sample(field, precision, rng):
    """Per chain: potrf, then trtrs for L y = f and L^T x = y + z (scipy's LAPACK wrappers)."""
    potrf, trtrs = lapack.get_lapack_funcs(("potrf", "trtrs"), (precision,))
    z = rng.standard_normal(field.shape, dtype=field.dtype)
    out = np.empty_like(field)
    for r in range(field.shape[0]):
        chol, info = potrf(precision[r], lower=1)
        assert info == 0
        y = trtrs(chol, field[r], lower=1)[0]
        out[r] = trtrs(chol, y + z[r], lower=1, trans=1)[0]
    return out


def substitution_sample(module, field, precision, rng):
    """The prelude's array-module path (what CuPy arrays take), on NumPy: batched Cholesky, substitution."""
    chol = np.linalg.cholesky(precision)
    z = rng.standard_normal(field.shape, dtype=field.dtype)
    saved = module._lapack
    module._lapack = lambda a: None
    try:
        return module.solve_lower_transposed(chol, module.solve_lower(chol, field) + z)
    finally:
        module._lapack = saved


def compiled(dtype, sizes, seed=0):
    c = pgmdsl.load("mcrbm", **sizes).compile(dtype=dtype, cache=False)
    rng = np.random.default_rng(seed)
    p = {"W": rng.normal(0, 0.1, (sizes["nv"], sizes["nm"])), "R": rng.normal(0, 0.2, (sizes["nv"], sizes["nc"])),
         "bm": rng.normal(0, 0.1, sizes["nm"]), "bc": rng.normal(0, 0.1, sizes["nc"])}
    return c, {k: v.astype(dtype) for k, v in p.items()}


def run(dtype, chains, repeats, inner):
    sizes = dict(nv=64, nm=50, nc=64)
    new, p = compiled(dtype, sizes)
    rng = np.random.default_rng(1)
    start = {"x": rng.normal(size=(chains, sizes["nv"])).astype(dtype),
             "hm": (rng.random((chains, sizes["nm"])) < 0.5).astype(dtype),
             "hc": (rng.random((chains, sizes["nc"])) < 0.5).astype(dtype)}

    # the same draw, to rounding, from the same generator
    field, precision = new.module.field_x(p, start), new.module.precision_x(p, start)
    drawn = {name: f(field, precision, np.random.default_rng(2)) for name, f in
             (("new", new.module.gaussian_joint_sample), ("old", old_gaussian_joint_sample), ("lapack", lapack_sample))}
    scale = np.max(np.abs(drawn["old"]))
    agree = {k: float(np.max(np.abs(v - drawn["old"])) / scale) for k, v in drawn.items() if k != "old"}

    states = {name: {k: v.copy() for k, v in start.items()} for name in ("generated", "before", "hand")}
    sweeps = interleaved({
        "generated": module_sweep(new.module, p, states["generated"], np.random.default_rng(3)),
        "before": module_sweep(new.module, p, states["before"], np.random.default_rng(3), before=True),
        "hand": hand_sweep(p, states["hand"], np.random.default_rng(3), dtype),
    }, repeats=repeats, inner=inner)
    kernel_rng = np.random.default_rng(4)
    kernels = interleaved({
        "old precision_x": lambda: old_precision_x(p, start, dtype),
        "precision_x": lambda: new.module.precision_x(p, start),
        "cholesky": lambda: np.linalg.cholesky(precision),
        "old sample": lambda: old_gaussian_joint_sample(field, precision, kernel_rng),
        "new sample": lambda: new.module.gaussian_joint_sample(field, precision, kernel_rng),
        "new factor": lambda: new.module.gaussian_joint_factor(precision),
        "lapack loop": lambda: lapack_sample(field, precision, kernel_rng),
        "substitution": lambda: substitution_sample(new.module, field, precision, kernel_rng),
        "old log Z": lambda: old_gaussian_joint_log_partition(field, precision),
        "new log Z": lambda: new.module.gaussian_joint_log_partition(field, precision),
    }, repeats=repeats, inner=inner)
    return sweeps, kernels, agree


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtype", nargs="+", default=["float64", "float32"])
    parser.add_argument("--chains", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--inner", type=int, default=20)
    args = parser.parse_args()
    print(machine())
    for dtype in args.dtype:
        sweeps, kernels, agree = run(dtype, args.chains, args.repeats, args.inner)
        print(f"\n{dtype}, {args.chains} chains; draws against the previous kernel's, relative: "
              + ", ".join(f"{k} {v:.1e}" for k, v in agree.items()))
        print("sweep (hm, hc, x)   ms    before/this")
        for name, seconds in sweeps.items():
            print(f"  {name:<16} {seconds * 1e3:6.2f}  {sweeps['before'] / seconds:5.2f}")
        print("x kernels alone     ms")
        for name, seconds in kernels.items():
            print(f"  {name:<16} {seconds * 1e3:6.2f}")
        print(f"  sample: old/new {kernels['old sample'] / kernels['new sample']:.2f}, "
              f"log Z: old/new {kernels['old log Z'] / kernels['new log Z']:.2f}")


if __name__ == "__main__":
    main()
