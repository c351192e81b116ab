"""The forward pass of Table-2 networks on the CPU, without TensorFlow.

The convolutional trunk (scaling, convolutions, pooling, LeakyReLU, linear skip) runs as
machine code generated for this CPU (:mod:`._trunk_ir`); the flattened features of a chunk of
spectra then go through the dense layers as matrix products (BLAS), so their weights are
read once per chunk, not once per spectrum. Each chunk writes only its own outputs, so
chunks run on the package's thread pool and the result does not depend on the number of
threads.
"""

import numpy as np

from ._trunk_ir import Trunk

__all__ = ["CompiledEnsemble"]


class CompiledEnsemble:
    """The kept members of a Table-2 ensemble as compiled CPU code.

    ``ensemble(X, offset, scale)`` returns float32 ``(n_models, n, n_labels)``: the
    standardised outputs of every member for the ``(n, p)`` spectra ``X``, which the
    members see as ``(X - offset) / scale`` (None: as they are), scaled here row by row.
    Chunks of ``CHUNK`` spectra run on the package's thread pool, on all the task's threads
    (:func:`~skstellar.utils._threads.task_threads`); within a
    chunk every member reads the same rows while they are in the cache.

    Raises :class:`~skstellar.models._trunk_ir.UnsupportedTrunk` for a network whose
    trunk the code generator does not handle (the caller then runs Keras).
    """

    CHUNK = 64

    def __init__(self, models, n_features, recipe):
        from ._predict import table2_layers

        self.n_features = n_features
        self.slope = np.float32(recipe["negative_slope"])
        self.members = []
        self.trunk = None
        for model in models:
            convs, denses, skip = table2_layers(model)
            if self.trunk is None:  # the members share their architecture, hence the machine code
                shapes = [kernel.shape for kernel, _ in convs]
                self.trunk = Trunk(n_features, [(c_in, c_out, k) for k, c_in, c_out in shapes],
                                   recipe["pool_size"], self.slope, 0 if skip is None else skip[0].shape[1])
            params = self.trunk.pack(*zip(*convs))
            c_last = convs[-1][0].shape[2]
            n_flat = denses[0][0].shape[0]
            # Keras flattens (pixel, channel); the kernel writes channel after channel
            first = denses[0][0].reshape(n_flat // c_last, c_last, -1).transpose(1, 0, 2).reshape(n_flat, -1)
            dense = [(np.ascontiguousarray(first), denses[0][1])] + list(denses[1:])
            skip_w = None if skip is None else np.ascontiguousarray(skip[0].T)
            self.members.append((params, dense, skip_w, None if skip is None else skip[1]))

    def __call__(self, X, offset=None, scale=None):
        from threadpoolctl import threadpool_limits

        from ..utils import _threads

        n, p = X.shape
        off = np.zeros(p, np.float32) if offset is None else np.broadcast_to(offset, (p,)).astype(np.float32)
        inv = np.ones(p, np.float32) if scale is None else (1 / np.broadcast_to(scale, (p,))).astype(np.float32)
        n_out = self.members[0][1][-1][0].shape[1]
        out = np.empty((len(self.members), n, n_out), dtype=np.float32)
        trunk = self.trunk

        def chunk(rows):
            part = np.ascontiguousarray(X[rows], dtype=np.float32)  # a view if X is float32 already
            m = len(part)
            scratch = np.zeros(trunk.n_scratch, np.float32)  # zeros: the slack past the pixels stays finite
            feats = np.empty((m, trunk.n_flat), np.float32)
            skip_out = np.empty((m, trunk.n_skip), np.float32)
            for k, (params, dense, skip_w, skip_b) in enumerate(self.members):
                trunk(part, off, inv, params, skip_w, scratch, feats, skip_out)
                h = feats
                for i, (kernel, bias) in enumerate(dense):
                    h = h @ kernel + bias
                    if i < len(dense) - 1:
                        h = np.maximum(h, self.slope * h)
                if skip_w is not None:
                    h += skip_out + skip_b
                out[k, rows] = h

        chunks = [slice(s, min(s + self.CHUNK, n)) for s in range(0, n, self.CHUNK)]
        with threadpool_limits(1):  # the chunks fill the cores; BLAS threads would oversubscribe
            _threads.for_each_chunk(chunk, chunks, _threads.task_threads())  # compute-bound: all the task's threads
        return out
