# ---- prelude: fused CUDA kernels (pgmdsl cupy backend) ----
# Inlined after the NumPy prelude. When `xp` is cupy, the hot elementwise steps
# (sigmoid, softplus, log2cosh, and the Bernoulli and spin draws) become one
# CUDA kernel each (cupy.ElementwiseKernel) instead of a chain of array
# operations with a temporary array per step. With the NumPy stand-in
# (PGMDSL_CUPY_STANDIN=numpy) nothing is redefined: the NumPy prelude's
# versions stay in effect.
#
# FUSED_KERNELS is the one definition of each kernel's arithmetic:
#     name: (inputs, outputs, C body, NumPy equivalent)
# The C body is CUDA C++ over the element type T (float or double), written
# with <math.h> functions that have float and double overloads in CUDA, so
# tests/test_fused_kernels.py compiles the same text as plain C (<tgmath.h>,
# T = double and T = float) and checks it against the NumPy equivalent on the CPU.
# A draw takes uniforms u in [0, 1): a unit is on where u < p.

FUSED_KERNELS = {
    "sigmoid": (
        "T x", "T y",
        "y = 1 / (1 + exp(-x))",
        lambda x: 1 / (1 + xp.exp(-x)),
    ),
    "softplus": (
        "T x", "T y",
        "y = (x > 0 ? x : 0) + log1p(exp(-fabs(x)))",
        lambda x: xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x))),
    ),
    "log2cosh": (
        "T x", "T y",
        "y = fabs(x) + log1p(exp(-2 * fabs(x)))",
        lambda x: xp.abs(x) + xp.log1p(xp.exp(-2 * xp.abs(x))),
    ),
    "bernoulli": (
        "T p, T u", "T y",
        "y = u < p ? 1 : 0",
        lambda p, u: (u < p).astype(p.dtype),
    ),
    "bernoulli_logit": (
        "T x, T u", "T y",
        "y = u < 1 / (1 + exp(-x)) ? 1 : 0",
        lambda x, u: (u < 1 / (1 + xp.exp(-x))).astype(x.dtype),
    ),
    "spins": (
        "T x, T u", "T y",
        "y = u < 1 / (1 + exp(-2 * x)) ? 1 : -1",
        lambda x, u: xp.where(u < 1 / (1 + xp.exp(-2 * x)), 1, -1).astype(x.dtype),
    ),
}


def bernoulli_logit(x, rng):
    """Binary units on with probability sigmoid(x): the sigmoid and the draw in one step."""
    return bernoulli(sigmoid(x), rng)


if getattr(xp, "__name__", "") == "cupy":
    _FUSED = {
        _name: xp.ElementwiseKernel(_inputs, _outputs, _body, f"pgmdsl_{_name}")
        for _name, (_inputs, _outputs, _body, _) in FUSED_KERNELS.items()
    }
    # the NumPy prelude's versions, for dtypes the kernels are not written for (float16, integers)
    _UNFUSED = {"sigmoid": sigmoid, "softplus": softplus, "log2cosh": log2cosh,
                "bernoulli": bernoulli, "bernoulli_logit": bernoulli_logit, "spins": spins}

    def _kernel_dtype(x):
        """The kernels are compiled for float32 and float64 arrays."""
        return x.dtype.char in "fd"

    def _uniforms(rng, like):
        """Uniforms in [0, 1) shaped and typed like `like`, on the GPU (a NumPy Generator works too)."""
        u = rng.random(like.shape, dtype=like.dtype)
        return u if isinstance(u, xp.ndarray) else xp.asarray(u)

    def sigmoid(x):
        return _FUSED["sigmoid"](x) if _kernel_dtype(x) else _UNFUSED["sigmoid"](x)

    def softplus(x):
        return _FUSED["softplus"](x) if _kernel_dtype(x) else _UNFUSED["softplus"](x)

    def log2cosh(x):
        return _FUSED["log2cosh"](x) if _kernel_dtype(x) else _UNFUSED["log2cosh"](x)

    def bernoulli(p, rng):
        if not _kernel_dtype(p):
            return _UNFUSED["bernoulli"](p, rng)
        return _FUSED["bernoulli"](p, _uniforms(rng, p))

    def bernoulli_logit(x, rng):
        if not _kernel_dtype(x):
            return _UNFUSED["bernoulli_logit"](x, rng)
        return _FUSED["bernoulli_logit"](x, _uniforms(rng, x))

    def spins(field, rng):
        if not _kernel_dtype(field):
            return _UNFUSED["spins"](field, rng)
        return _FUSED["spins"](field, _uniforms(rng, field))
