"""The forward pass of Table-2 networks on the CPU, as compiled loops (numba).

oneDNN (TensorFlow's CPU library) is poor at convolutions of 1 to 8 channels, which are
most of the arithmetic of these networks (6.5 million of their 7.1 million multiply-adds
per spectrum at 8669 pixels). Here each convolution is a loop over output pixels that the
compiler vectorises: a tile of 512 output pixels of four filters at a time accumulates
four taps at a time, so every load of the input feeds 16 multiply-adds and the tile stays
in the L1 cache; the weights of those taps are scalars hoisted out of the loop (read from
the array inside it, they were reloaded every iteration: the compiler cannot rule out
that the accumulator stores alias them). Max pooling and the LeakyReLU follow on the tile
(the bias is added first, as in Keras). The flattened features of a chunk of spectra then
go through the dense layers as matrix products (BLAS), so their weights are read once per
chunk, not once per spectrum.

Each kernel call handles one chunk of spectra and writes only that chunk's outputs, so
chunks run on a thread pool without the GIL (``nogil``) and the result does not depend on
the number of threads; ``cache=True`` keeps the machine code between sessions.
"""

import numpy as np
from numba import njit

__all__ = ["CompiledEnsemble", "trunk_rows"]

TILE = 512  # output pixels per tile: the 4 accumulator rows (8 kB) and the input window stay in L1


@njit(nogil=True, fastmath=True, error_model="numpy", cache=True)
def _conv_pool(x, w, b, slope, pool, out, acc):
    """``out = leaky(maxpool(conv(x, w) + b))``, a "valid" convolution.

    x : (c_in, L_in); w : (c_out, c_in, K) with c_out even (a zero filter pads odd counts);
    out : (c_out, L_pool), L_pool = (L_in - K + 1) // pool; acc : (4, TILE) scratch.
    Output pixels past ``L_pool * pool`` are never computed: the pooling drops them.
    """
    c_in = x.shape[0]
    c_out, _, K = w.shape
    L_pool = out.shape[1]
    n_conv = L_pool * pool
    for t0 in range(0, n_conv, TILE):
        n = min(TILE, n_conv - t0)
        j0 = t0 // pool
        o = 0
        while o < c_out:
            g = 4 if o + 4 <= c_out else 2
            a0 = acc[0, :n]
            a1 = acc[1, :n]
            a2 = acc[2, :n]
            a3 = acc[3, :n]
            for q in range(g):
                acc[q, :n] = b[o + q]
            for c in range(c_in):
                k = 0
                while k < K:
                    s = t0 + k
                    if k + 4 <= K:
                        # four taps: x1..x3 are the input shifted by 1..3 pixels
                        x0 = x[c, s:s + n]
                        x1 = x[c, s + 1:s + 1 + n]
                        x2 = x[c, s + 2:s + 2 + n]
                        x3 = x[c, s + 3:s + 3 + n]
                        # the weights as scalars: loaded once, not in every iteration (the
                        # stores to the accumulators might alias an array, not a scalar)
                        w00, w01, w02, w03 = w[o, c, k], w[o, c, k + 1], w[o, c, k + 2], w[o, c, k + 3]
                        w10, w11, w12, w13 = w[o + 1, c, k], w[o + 1, c, k + 1], w[o + 1, c, k + 2], w[o + 1, c, k + 3]
                        if g == 4:
                            w20, w21, w22, w23 = w[o + 2, c, k], w[o + 2, c, k + 1], w[o + 2, c, k + 2], w[o + 2, c, k + 3]
                            w30, w31, w32, w33 = w[o + 3, c, k], w[o + 3, c, k + 1], w[o + 3, c, k + 2], w[o + 3, c, k + 3]
                            for i in range(n):
                                v0, v1, v2, v3 = x0[i], x1[i], x2[i], x3[i]
                                a0[i] += w00 * v0 + w01 * v1 + w02 * v2 + w03 * v3
                                a1[i] += w10 * v0 + w11 * v1 + w12 * v2 + w13 * v3
                                a2[i] += w20 * v0 + w21 * v1 + w22 * v2 + w23 * v3
                                a3[i] += w30 * v0 + w31 * v1 + w32 * v2 + w33 * v3
                        else:
                            for i in range(n):
                                v0, v1, v2, v3 = x0[i], x1[i], x2[i], x3[i]
                                a0[i] += w00 * v0 + w01 * v1 + w02 * v2 + w03 * v3
                                a1[i] += w10 * v0 + w11 * v1 + w12 * v2 + w13 * v3
                        k += 4
                    else:
                        x0 = x[c, s:s + n]
                        for q in range(g):
                            wq = w[o + q, c, k]
                            aq = acc[q, :n]
                            for i in range(n):
                                aq[i] += wq * x0[i]
                        k += 1
            for q in range(g):
                # straight-line loops for the usual pool widths: they vectorise, a loop
                # over the window does not (and would cost more than the convolution of
                # a one-channel input)
                aq = acc[q]
                oq = out[o + q, j0:j0 + n // pool]
                if pool == 1:
                    for j in range(n):
                        m = aq[j]
                        oq[j] = m if m > 0 else slope * m
                elif pool == 2:
                    for j in range(n // 2):
                        m = max(aq[2 * j], aq[2 * j + 1])
                        oq[j] = m if m > 0 else slope * m
                else:
                    for j in range(n // pool):
                        m = aq[pool * j]
                        for r in range(1, pool):
                            m = max(m, aq[pool * j + r])
                        oq[j] = m if m > 0 else slope * m
            o += g


@njit(nogil=True, fastmath=True, error_model="numpy", cache=True)
def trunk_rows(X, offset, inv_scale, weights, biases, slope, pool, scaled, feats):
    """Convolutional trunk of every row of ``X`` (a chunk of spectra).

    X : (n, p) float32 spectra; offset, inv_scale : (p,) input scaling ``(x - offset) *
    inv_scale``; weights, biases : per convolution (c_out, c_in, K) and (c_out,) (numba typed
    lists; c_out even); pool : pooling width after every convolution but the last.
    Writes the scaled input to ``scaled`` (if it has rows: the linear skip reads it) and the
    flattened output, channel by channel, to ``feats``.
    """
    p = X.shape[1]
    n_conv = len(weights)
    x = np.empty((1, p), np.float32)
    acc = np.empty((4, TILE), np.float32)
    # activations of every layer, allocated once per call
    lengths = np.empty(n_conv, np.int64)
    length = p
    for i in range(n_conv):
        length = length - weights[i].shape[2] + 1
        if i < n_conv - 1:
            length //= pool
        lengths[i] = length
    hidden = [np.empty((weights[i].shape[0], lengths[i]), np.float32) for i in range(n_conv)]
    n_flat = feats.shape[1]
    for r in range(X.shape[0]):
        for i in range(p):
            x[0, i] = (X[r, i] - offset[i]) * inv_scale[i]
        if scaled.shape[0] > 0:
            scaled[r] = x[0]
        h = x
        for i in range(n_conv):
            _conv_pool(h, weights[i], biases[i], slope, pool if i < n_conv - 1 else 1, hidden[i], acc)
            h = hidden[i]
        feats[r] = h.reshape(-1)[:n_flat]


class CompiledEnsemble:
    """The kept members of a Table-2 ensemble as compiled CPU code.

    ``ensemble(X, offset, scale)`` returns float32 ``(n_models, n, n_labels)``: the
    standardised outputs of every member for the ``(n, p)`` spectra ``X``, which the
    members see as ``(X - offset) / scale`` (None: as they are), scaled here row by row.
    Chunks of ``CHUNK`` spectra run on the package's thread pool, on every core; within a
    chunk every member reads the same rows while they are in the cache.
    """

    CHUNK = 64

    def __init__(self, models, n_features, recipe):
        from numba.typed import List

        from ._predict import table2_layers

        self.n_features = n_features
        self.slope = np.float32(recipe["negative_slope"])
        self.pool = int(recipe["pool_size"])
        self.members = []
        for model in models:
            convs, denses, skip = table2_layers(model)
            weights, biases = List(), List()
            pad_in = 0
            for kernel, bias in convs:
                w = kernel.transpose(2, 1, 0)  # (c_out, c_in, K)
                pad_out = w.shape[0] % 2  # filters go in pairs: a zero filter pads an odd count
                w = np.pad(w, ((0, pad_out), (0, pad_in), (0, 0)))
                weights.append(np.ascontiguousarray(w, dtype=np.float32))
                biases.append(np.pad(bias, (0, pad_out)).astype(np.float32))
                pad_in = pad_out
            c_last = convs[-1][0].shape[2]
            n_flat = denses[0][0].shape[0]
            # Keras flattens (pixel, channel); the kernel writes channel after channel
            first = denses[0][0].reshape(n_flat // c_last, c_last, -1).transpose(1, 0, 2).reshape(n_flat, -1)
            dense = [(np.ascontiguousarray(first), denses[0][1])] + list(denses[1:])
            self.members.append((weights, biases, n_flat, dense, skip))

    def __call__(self, X, offset=None, scale=None):
        from threadpoolctl import threadpool_limits

        from ..utils import _threads

        n, p = X.shape
        off = np.zeros(p, np.float32) if offset is None else np.broadcast_to(offset, (p,)).astype(np.float32)
        inv = np.ones(p, np.float32) if scale is None else (1 / np.broadcast_to(scale, (p,))).astype(np.float32)
        n_out = self.members[0][3][-1][0].shape[1]
        out = np.empty((len(self.members), n, n_out), dtype=np.float32)
        needs_scaled = any(member[4] is not None for member in self.members)

        def chunk(rows):
            part = np.ascontiguousarray(X[rows], dtype=np.float32)  # a view if X is float32 already
            m = len(part)
            scaled = np.empty((m if needs_scaled else 0, p), np.float32)
            for k, (weights, biases, n_flat, dense, skip) in enumerate(self.members):
                feats = np.empty((m, n_flat), np.float32)
                # the first member writes the scaled rows; the others reuse them
                trunk_rows(part, off, inv, weights, biases, self.slope, self.pool,
                           scaled if k == 0 else scaled[:0], feats)
                h = feats
                for i, (kernel, bias) in enumerate(dense):
                    h = h @ kernel + bias
                    if i < len(dense) - 1:
                        h = np.maximum(h, self.slope * h)
                if skip is not None:
                    h += scaled @ skip[0] + skip[1]
                out[k, rows] = h

        chunks = [slice(s, min(s + self.CHUNK, n)) for s in range(0, n, self.CHUNK)]
        with threadpool_limits(1):  # the chunks fill the cores; BLAS threads would oversubscribe
            _threads.for_each_chunk(chunk, chunks, _threads.CORES)  # compute-bound: every core
        return out
