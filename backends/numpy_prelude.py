# ---- prelude: numerically stable kernels and samplers (pgmdsl numpy backend) ----
import threading
from itertools import product


def sigmoid(x):
    """1/(1+exp(-x)) as 0.5*tanh(x/2)+0.5: stable, and the fastest form in NumPy."""
    out = xp.multiply(x, 0.5)
    xp.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def softplus(x):
    """log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|)), logaddexp(0, x)'s own formula.

    Written out in place because NumPy's logaddexp loop is scalar: on float
    arrays these five vectorised passes are 10-20x faster (bench/ais_time.py).
    """
    x = xp.asarray(x)
    if x.ndim == 0 or x.dtype.kind != "f":
        return xp.logaddexp(0, x)
    out = xp.abs(x)
    xp.negative(out, out=out)
    xp.exp(out, out=out)
    xp.log1p(out, out=out)
    out += xp.maximum(x, 0)
    return out


def log2cosh(x):
    """log(2 cosh x) without overflow: |x| + log1p(exp(-2|x|))."""
    a = xp.abs(x)
    return a + xp.log1p(xp.exp(-2 * a))


def logsumexp(x, axis=-1):
    top = xp.max(x, axis=axis, keepdims=True)
    top = xp.where(xp.isfinite(top), top, 0)
    return xp.squeeze(top, axis) + xp.log(xp.sum(xp.exp(x - top), axis=axis))


def softmax(x, axis=-1):
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def bernoulli(p, rng):
    """Binary units on with probability p."""
    return (rng.random(p.shape, dtype=p.dtype) < p).astype(p.dtype)


def bernoulli_logit(field, rng):
    """Binary units on with probability sigmoid(field) (one fused kernel on the GPU)."""
    return bernoulli(sigmoid(field), rng)


def tempered(beta, rank):
    """beta with rank + 1 trailing axes of length one, to scale (batch,) + layer-shaped arrays."""
    return xp.reshape(beta, xp.shape(beta) + (1,) * (rank + 1))


def anneal(field, beta, offset):
    """beta * field + offset (offset None: no extra field): a tempered conditional, for AIS."""
    field = beta * field
    return field if offset is None else field + offset


def spins(field, rng):
    """Units in {-1, +1} with P(+1) = sigmoid(2 field)."""
    return 2 * bernoulli(sigmoid(2 * field), rng) - 1


def categorical(p, rng):
    """One-hot draws over the last axis from probabilities p."""
    u = rng.random(p.shape[:-1] + (1,), dtype=p.dtype)
    chosen = xp.minimum(xp.sum(xp.cumsum(p, axis=-1) < u, axis=-1), p.shape[-1] - 1)
    return (xp.arange(p.shape[-1]) == chosen[..., None]).astype(p.dtype)


def _blocks(x, pool):
    """(..., H, W) -> (..., H/ph, W/pw, ph*pw): the units of each pooling block on the last axis."""
    k = len(pool)
    lead = x.shape[: x.ndim - k]
    split = lead
    for extent, size in zip(x.shape[x.ndim - k:], pool):
        split += (extent // size, size)
    inner = [len(lead) + 2 * i + 1 for i in range(k)]
    blocks = xp.moveaxis(x.reshape(split), inner, list(range(-k, 0)))
    size = 1
    for p in pool:
        size *= p
    return blocks.reshape(blocks.shape[: blocks.ndim - k] + (size,))


def _unblocks(blocks, shape, pool):
    k = len(pool)
    lead = len(shape) - k
    b = blocks.reshape(blocks.shape[:-1] + tuple(pool))
    b = xp.moveaxis(b, list(range(-k, 0)), [lead + 2 * i + 1 for i in range(k)])
    return b.reshape(shape)


def pooled_probabilities(field, pool):
    """Probabilistic max pooling: each block is one categorical over its units and 'all off'."""
    blocks = _blocks(field, pool)
    top = xp.maximum(xp.max(blocks, axis=-1, keepdims=True), 0)
    e = xp.exp(blocks - top)
    off = xp.exp(-top)
    return e / (off + xp.sum(e, axis=-1, keepdims=True)), off / (off + xp.sum(e, axis=-1, keepdims=True))


def _positions(x, pool):
    """The strided views x[..., i::ph, j::pw], one per position in a block, in _blocks' (row-major) order."""
    return [x[(Ellipsis,) + tuple(slice(o, None, size) for o, size in zip(offsets, pool))]
            for offsets in product(*(range(size) for size in pool))]


def _block_reduce(ufunc, x, pool):
    """ufunc (add, maximum) over each pooling block, one pooled axis at a time, outermost first.

    Pairs of strided slices with the rows left whole: reductions over a tiny
    trailing axis (a block moved last) run a short inner loop per block and
    were 5-10x slower.
    """
    k = len(pool)
    for a, size in enumerate(pool):
        axis = x.ndim - k + a
        parts = [x[(slice(None),) * axis + (slice(o, None, size),)] for o in range(size)]
        acc = ufunc(parts[0], parts[1]) if size > 1 else xp.array(parts[0], copy=True)
        for part in parts[2:]:
            ufunc(acc, part, out=acc)
        x = acc
    return x


def _split(shape, pool):
    """shape with every pooled axis but the last split into (blocks, size), so _spread's values broadcast."""
    k = len(pool)
    split = tuple(shape[: len(shape) - k])
    for extent, size in zip(shape[len(shape) - k: -1], pool[:-1]):
        split += (extent // size, size)
    return split + (shape[-1],)


def _spread(d, pool):
    """Block values d (..., H/ph, W/pw) against _split's shape: repeated along the last axis, broadcast on the rest.

    The last axis stays long and contiguous, so the arithmetic over the
    detector units keeps NumPy's fast inner loops.
    """
    d = xp.repeat(d, pool[-1], axis=-1)
    return d[(Ellipsis,) + (slice(None), None) * (len(pool) - 1) + (slice(None),)]


def _memory_order(x, pool):
    """Axes of x with the leading (non-pooled) ones in memory order: x.transpose(order) is C-ordered when x is
    a permuted C array (a field straight from a GEMM), so pooled work reads and returns it without a copy."""
    lead = x.ndim - len(pool)
    return sorted(range(lead), key=lambda a: -abs(x.strides[a])) + list(range(lead, x.ndim))


def _inverse(order):
    return tuple(sorted(range(len(order)), key=order.__getitem__))


def _pooled_weights(field, pool):
    """exp(field - t) in _split's shape (a new C-ordered array), each block's exp(-t) + their sum, and t.

    t = max(0, the block's largest field) keeps exp from overflowing; 'all off' has weight exp(-t).
    """
    top = xp.maximum(_block_reduce(xp.maximum, field, pool), 0)
    top = xp.where(xp.isfinite(top), top, 0)
    e = xp.subtract(field.reshape(_split(field.shape, pool)), _spread(top, pool))
    xp.exp(e, out=e)
    total = xp.exp(-top)
    total += _block_reduce(xp.add, e.reshape(field.shape), pool)
    return e, total, top


def pooled_mean(field, pool):
    """P(unit on): exp(field) / (1 + the block's sum of exp(field)), per pooling block; laid out as field is."""
    order = _memory_order(field, pool)
    field = field.transpose(order)
    e, total, _ = _pooled_weights(field, pool)
    e /= _spread(total, pool)
    return e.reshape(field.shape).transpose(_inverse(order))


def _pooled_choice(probabilities, pool, rng):
    """One categorical draw per block: unit i on when cum_(i-1) < u <= cum_i; 'all off' when u is past them all.

    One uniform per block (the same draws, in the same order, as categorical
    over the blocks with 'off' last), compared against the running sums of
    the ph*pw positions.
    """
    out = xp.zeros_like(probabilities)  # laid out as the means are, so the next product reads it without a copy
    cum = below = u = None
    for position, drawn in zip(_positions(probabilities, pool), _positions(out, pool)):
        if u is None:
            u = rng.random(position.shape, dtype=probabilities.dtype)
            cum = xp.array(position, copy=True)
        else:
            cum += position
        now = u <= cum
        drawn[...] = now if below is None else now > below
        below = now
    return out


def pooled_sample(field, pool, rng):
    """Draw detector units from their fields: at most one on per block; laid out as field is."""
    return _pooled_choice(pooled_mean(field, pool), pool, rng)


def pooled_draw(mean, pool, rng):
    """Draw pooled detector units from their conditional means (the rest of each block is 'off')."""
    return _pooled_choice(mean, pool, rng)


def pooled_units(x, pool):
    """The pooling units of detector units x (or their means): each block's sum, the OR of a block with one unit on."""
    return _block_reduce(xp.add, x, pool)


def pooled_log_partition(field, pool):
    """log(1 + sum of exp(field)) over each block."""
    _, total, top = _pooled_weights(field, pool)
    return xp.log(total) + top


def diagonal(d):
    """Diagonal matrices with the last axis of d on their diagonals (an extra precision per unit)."""
    return d[..., None] * xp.eye(d.shape[-1], dtype=d.dtype)


def _lapack(a):
    """scipy's LAPACK (the d or s routines) for a float64 or float32 NumPy array, else None.

    For NumPy arrays a loop over the rows calling potrf and trtrs directly
    beats NumPy's batched Cholesky plus any batched solve (bench/mcrbm_sweep.py);
    other arrays (CuPy's) take the array-module path below.
    """
    import numpy

    if not isinstance(a, numpy.ndarray) or a.dtype.char not in "fd":
        return None
    from scipy.linalg import lapack

    return lapack.dpotrf if a.dtype.char == "d" else lapack.spotrf, lapack.dtrtrs if a.dtype.char == "d" else lapack.strtrs


def gaussian_joint_factor(precision, overwrite=False):
    """The lower Cholesky factors L (P = L L^T) of a batch of precisions (..., n, n): one factorisation.

    The mean, the draw and the log-partition all take the factor (chol=), so a
    caller that needs several of them factors once. overwrite: the caller owns
    `precision` and no longer needs it; on NumPy the factors then take its place.
    """
    routines = _lapack(precision)
    if routines is None:
        return xp.linalg.cholesky(precision)
    potrf = routines[0]
    n = precision.shape[-1]
    in_place = overwrite and precision.flags.c_contiguous and precision.flags.writeable
    chol = xp.reshape(precision, (-1, n, n))  # C order: row r's transpose is in Fortran order
    chol = chol if in_place else xp.array(chol, copy=True)
    for r in range(chol.shape[0]):
        # P is symmetric: chol[r].T (Fortran order, no copy) is P; its upper factor U (P = U^T U) is, read in
        # C order, the lower factor L = U^T. clean zeroes the rest.
        _, info = potrf(chol[r].T, lower=0, overwrite_a=1, clean=1)
        if info != 0:
            import numpy

            raise numpy.linalg.LinAlgError("Matrix is not positive definite")
    return xp.reshape(chol, precision.shape)


def _broadcast_shapes(*shapes):
    """numpy.broadcast_shapes (shapes only: for CuPy arrays too)."""
    import numpy

    return numpy.broadcast_shapes(*shapes)


def _rows(chol, b):
    """chol and b broadcast against each other and flattened to rows: (rows, n, n), (rows, n) and the shape."""
    n = chol.shape[-1]
    shape = _broadcast_shapes(b.shape, chol.shape[:-1])
    rows = xp.reshape(xp.broadcast_to(chol, shape + (n,)), (-1, n, n))
    right = xp.reshape(xp.broadcast_to(b, shape), (-1, n))
    return rows, right, shape


def solve_lower(chol, b):
    """y with L y = b for a batch of lower-triangular L (..., n, n) and b (..., n), broadcast.

    NumPy: LAPACK's trtrs per row. Otherwise forward substitution, n steps each
    vectorised over the batch (O(n^2) per row; no general solve: neither NumPy
    nor CuPy has a batched triangular solve).
    """
    routines = _lapack(chol)
    if routines is not None and b.dtype == chol.dtype:
        trtrs = routines[1]
        rows, right, shape = _rows(chol, b)
        y = xp.empty_like(right)
        for r in range(rows.shape[0]):  # rows[r].T in Fortran order is L^T: solve (L^T)^T y = b
            y[r], info = trtrs(rows[r].T, right[r], lower=0, trans=1)
        return xp.reshape(y, shape)
    y = xp.empty(_broadcast_shapes(b.shape, chol.shape[:-1]), dtype=xp.result_type(chol, b))
    for i in range(b.shape[-1]):
        y[..., i] = (b[..., i] - xp.sum(chol[..., i, :i] * y[..., :i], axis=-1)) / chol[..., i, i]
    return y


def solve_lower_transposed(chol, y):
    """x with L^T x = y for a batch of lower-triangular L: trtrs per row (NumPy), else back substitution."""
    routines = _lapack(chol)
    if routines is not None and y.dtype == chol.dtype:
        trtrs = routines[1]
        rows, right, shape = _rows(chol, y)
        x = xp.empty_like(right)
        for r in range(rows.shape[0]):
            x[r], info = trtrs(rows[r].T, right[r], lower=0, trans=0)
        return xp.reshape(x, shape)
    x = xp.array(xp.broadcast_to(y, _broadcast_shapes(y.shape, chol.shape[:-1])), dtype=xp.result_type(chol, y), copy=True)
    for i in range(y.shape[-1] - 1, -1, -1):
        x[..., i] = x[..., i] / chol[..., i, i]
        x[..., :i] = x[..., :i] - chol[..., i, :i] * x[..., i, None]
    return x


def gaussian_joint_mean(field, precision, chol=None, overwrite=False):
    """Mean P^-1 f of N(P^-1 f, P^-1) for a batch of precisions P = L L^T (two triangular solves).

    chol: P's Cholesky factors (gaussian_joint_factor) when the caller has them already.
    overwrite: the caller's precision may be overwritten (gaussian_joint_factor).
    """
    chol = gaussian_joint_factor(precision, overwrite) if chol is None else chol
    return solve_lower_transposed(chol, solve_lower(chol, field))


def gaussian_joint_sample(field, precision, rng, chol=None, overwrite=False):
    """Exact draw from N(P^-1 f, P^-1): L^-T (L^-1 f + z) with P = L L^T, one factorisation for mean and noise."""
    chol = gaussian_joint_factor(precision, overwrite) if chol is None else chol
    z = rng.standard_normal(field.shape, dtype=field.dtype)
    return solve_lower_transposed(chol, solve_lower(chol, field) + z)


def gaussian_joint_log_partition(field, precision, chol=None, overwrite=False):
    """log of the integral of exp(f.x - x^T P x / 2): f^T P^-1 f / 2 - log det P / 2 + n log(2 pi) / 2."""
    chol = gaussian_joint_factor(precision, overwrite) if chol is None else chol
    y = solve_lower(chol, field)
    log_det = 2 * xp.sum(xp.log(xp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    return 0.5 * xp.sum(y * y, axis=-1) - 0.5 * log_det + 0.5 * field.shape[-1] * xp.log(2 * xp.pi)


# Arrays kept for reuse, per thread: a patch matrix (im2col) while its source holds the same values, and a
# product of parameters alone (kept_einsum) while they do. Each store keeps (copies of the sources, settings, the
# array), the most recently used last.
_PATCHES = threading.local()
PATCH_ENTRIES = 3  # matrices kept: a CD step's two phases and the one before (least recently used dropped first)
PATCH_BYTES = 1 << 28  # and at most this many bytes of them
_KEPT = threading.local()
KEPT_ENTRIES = 4  # products of parameters kept (a model's precision and free energy each have one)


def _recalled(store, entries, settings, sources, build):
    """The array `build()` made for equal settings and sources of equal values, else a new one (kept if small).

    Equality of every entry of every source, checked against the copies
    kept, never assumed from an array's identity: a source changed in place
    (a parameter after an update) is read afresh. Callers only read the array.
    """
    kept = store.__dict__.setdefault("entries", [])
    for number in range(len(kept) - 1, -1, -1):  # the most recent first
        copies, known, built = kept[number]
        if known == settings and all(a.shape == b.shape and a.dtype == b.dtype and bool(xp.array_equal(a, b))
                                     for a, b in zip(copies, sources)):
            kept.append(kept.pop(number))
            return built
    built = build()
    if built.nbytes <= PATCH_BYTES:
        kept.append((tuple(xp.array(x, copy=True) for x in sources), settings, built))
        while len(kept) > entries or sum(entry[-1].nbytes for entry in kept) > PATCH_BYTES:
            kept.pop(0)
    return built


def patches(x, specs, batched, order):
    """x read at affine indices as a C-ordered patch matrix (im2col), its axes permuted by `order`.

    A CD step reads the same visible rows into patches three times (the data
    phase's hidden field, the statistics; the model phase's likewise): the
    matrix, 81 times the rows for 9x9 filters, is kept and handed out again
    while a later call's x holds the same values (a few hundredths of the
    build's time to check).
    """
    return _recalled(_PATCHES, PATCH_ENTRIES, (specs, batched, order), (x,),
                     lambda: xp.ascontiguousarray(unfold(x, specs, batched).transpose(order)))


def kept_einsum(spec, *operands):
    """xp.einsum(spec, *operands) of parameters alone, kept while they hold the same values.

    A product that grows its operands (the mcRBM's R R^T per factor, nv x nv
    x nc from nv x nc) is rebuilt by every call of a kernel that needs it,
    though sampling never changes the parameters: checking the operands
    costs a copy's worth of their (smaller) size.
    """
    return _recalled(_KEPT, KEPT_ENTRIES, spec, operands, lambda: xp.einsum(spec, *operands))


def unfold(x, specs, batched):
    """Read x at affine indices: sliding windows for y + r, strides for 2*y, fixed entries for constants."""
    lead = 1 if batched else 0
    windows = [(lead + k, spec[4]) for k, spec in enumerate(specs) if spec and spec[0] == "window"]
    if windows:
        x = _sliding_windows(x, [w for _, w in windows], [a for a, _ in windows])
    index = [slice(None)] * lead
    for spec in specs:
        index.append(_axis_index(spec, 0))
    return x[tuple(index)]


def _sliding_windows(x, window_shape, axis):
    """sliding_window_view(x, window_shape, axis=axis): the windows' axes appended, a view.

    On CuPy the same view is made with as_strided: CuPy before 13 lacks
    sliding_window_view, and CuPy's reads the window shape back from the GPU.
    """
    if xp.__name__ == "numpy":
        return xp.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)
    shape = list(x.shape)
    for a, w in zip(axis, window_shape):
        shape[a] -= w - 1
    strides = tuple(x.strides) + tuple(x.strides[a] for a in axis)
    return xp.lib.stride_tricks.as_strided(x, shape=tuple(shape) + tuple(window_shape), strides=strides)


def _axis_index(spec, shift):
    if spec is None:
        return slice(None)
    if spec[0] == "at":
        return spec[1]
    offset, stride, count = spec[1] + shift, spec[2], spec[3]
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def fold(g, shape, specs, batched):
    """The adjoint of unfold (col2im): add each window offset's values back where they were read.

    g's axes: the window offsets first, then the batch, then the other axes
    as unfold leaves them; each offset's values, g[offsets], are then one
    contiguous block, added with one call (not a strided gather per offset).
    """
    widths = [spec[4] for spec in specs if spec and spec[0] == "window"]
    lead = tuple(g.shape[len(widths): len(widths) + 1]) if batched else ()
    out = xp.zeros(lead + tuple(shape), dtype=g.dtype)
    for offsets in product(*(range(w) for w in widths)):
        index, k = [slice(None)] * len(lead), 0
        for spec in specs:
            shift = 0
            if spec and spec[0] == "window":
                shift, k = offsets[k], k + 1
            index.append(_axis_index(spec, shift))
        out[tuple(index)] += g[offsets]
    return out


def batch_size(state):
    """Rows in a state: the length of any of its arrays."""
    return len(next(iter(state.values())))
