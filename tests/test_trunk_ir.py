"""The generated convolutional trunk against a float64 reference, for several SIMD shapes."""

import itertools

import numpy as np
import pytest

from skstellar.models._trunk_ir import Trunk, UnsupportedTrunk, block_shape

# (lanes, registers): this CPU's, AVX2, SSE, NEON. Narrower vectors than the CPU's run here too.
SIMD = [None, (8, 16), (4, 16), (4, 32)]
ARCHITECTURES = {
    "table2+skip": (8669, [(1, 8, 20), (8, 6, 20), (6, 4, 20)], 2, 0.3, 5),
    "pool3": (301, [(1, 3, 7), (3, 5, 7)], 3, 0.3, 0),
    "four convs": (300, [(1, 2, 4), (2, 3, 4), (3, 4, 4), (4, 2, 4)], 2, 0.1, 3),
    "pool4, 9 filters": (517, [(1, 9, 5), (9, 7, 3)], 4, 0.2, 0),
}


def reference(x, kernels, biases, pool, slope):
    """Keras' Conv1D ("valid") + LeakyReLU (+ MaxPooling1D) in float64, flattened channel first."""
    h = x[:, None].astype(np.float64)  # (pixels, channels)
    for i, (kernel, bias) in enumerate(zip(kernels, biases)):
        width = kernel.shape[0]
        windows = np.lib.stride_tricks.sliding_window_view(h, width, axis=0)  # (L, c_in, K)
        h = np.einsum("lck,kco->lo", windows, kernel.astype(np.float64)) + bias
        h = np.where(h > 0, h, slope * h)
        if i < len(kernels) - 1:
            n = len(h) // pool
            h = h[:n * pool].reshape(n, pool, -1).max(axis=1)
    return h.T.ravel()


@pytest.mark.parametrize("simd", SIMD, ids=lambda s: "host" if s is None else f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_trunk_equals_float64_reference(name, simd, rng):
    p, convs, pool, slope, n_skip = ARCHITECTURES[name]
    trunk = Trunk(p, convs, pool, slope, n_skip, simd=simd)
    kernels = [rng.normal(0, 0.3, (k, c_in, c_out)).astype(np.float32) for c_in, c_out, k in convs]
    biases = [rng.normal(0, 0.1, c_out).astype(np.float32) for _, c_out, _ in convs]
    n = 5
    X = (1 - 0.3 * rng.random((n, p))).astype(np.float32)
    offset = np.float32(1) + np.zeros(p, np.float32)
    inv_scale = rng.uniform(0.5, 2, p).astype(np.float32)
    skip = rng.normal(0, 0.05, (n_skip, p)).astype(np.float32)
    feats = np.full((n, trunk.n_flat), np.nan, np.float32)
    skip_out = np.full((n, n_skip), np.nan, np.float32)
    trunk(X, offset, inv_scale, trunk.pack(kernels, biases), skip, np.zeros(trunk.n_scratch, np.float32),
          feats, skip_out)
    for row in range(n):
        x = (X[row].astype(np.float64) - 1) * inv_scale
        expected = reference(x, kernels, biases, pool, slope)
        assert expected.shape == feats[row].shape
        np.testing.assert_allclose(feats[row], expected, rtol=0, atol=2e-6 * np.abs(expected).max())
        np.testing.assert_allclose(skip_out[row], skip @ x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("lanes, regs", [(16, 32), (8, 16), (4, 16), (4, 32)])
def test_block_shape_fits_registers_and_pooling_windows(lanes, regs):
    for c_out, pool in itertools.product(range(1, 13), range(1, 12)):
        possible = [(F, V) for F in range(1, c_out + 1) for V in range(1, 9)
                    if F * V + V + 1 <= regs and V * lanes % pool == 0 and (V >= 2 or F == 1)]
        if not possible:
            with pytest.raises(UnsupportedTrunk, match=f"pooling windows of {pool} pixels"):
                block_shape(c_out, pool, lanes, regs)
            continue
        F, V = block_shape(c_out, pool, lanes, regs)
        assert (F, V) in possible
        assert F == max(f for f, _ in possible)  # as many filters per pass over the input as fit


def test_trunk_refuses_buffers_of_the_wrong_shape(rng):
    p, convs, pool, slope, n_skip = ARCHITECTURES["pool3"]
    trunk = Trunk(p, convs, pool, slope, n_skip)
    X = rng.random((3, p)).astype(np.float32)
    args = dict(X=X, offset=np.zeros(p, np.float32), inv_scale=np.ones(p, np.float32),
                params=np.zeros(trunk.n_params, np.float32), skip=None,
                scratch=np.zeros(trunk.n_scratch, np.float32), feats=np.empty((3, trunk.n_flat), np.float32),
                skip_out=np.empty((3, 0), np.float32))
    trunk(**args)
    for name, bad in [("X", X[:, :-1]), ("X", X.astype(np.float64)), ("scratch", args["scratch"][:-1]),
                      ("feats", np.empty((2, trunk.n_flat), np.float32)), ("params", args["params"][1:]),
                      ("X", np.asfortranarray(X))]:
        with pytest.raises(ValueError, match=f"^{name}: expected C-contiguous float32"):
            trunk(**{**args, name: bad})
    with pytest.raises(ValueError, match=f"^24 convolution parameters for a trunk of {trunk.n_params}$"):
        trunk.pack([np.zeros((7, 1, 3))], [np.zeros(3)])  # the first convolution only
