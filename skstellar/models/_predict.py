"""Ensemble prediction through one compiled ``tf.function``, chunk by chunk.

A ``tf.function`` call avoids ``model.predict``'s per-call machinery (design.md measured 6 150
against 4 300 spectra/s). Chunks of 1024 spectra: throughput per CPU-second was the same from
256 to 4096 (about 1 500 spectra per CPU-second for Table 2, benchmarks/bench_predict.py) while
the peak memory grew from 1.5 to 5.5 GB, the first convolution's output alone being
4096 x 8650 x 8 float32 = 1.1 GB at 4096. All kept members run in the same graph call,
so a chunk is read once for the whole ensemble. TensorFlow places it on a GPU when one is
visible and on the CPU otherwise.
"""

import numpy as np

PREDICT_BATCH = 1024


def make_ensemble_function(models, n_features):
    """A compiled function mapping a float32 ``(b, n_features)`` batch to ``(n_models, b, k)``."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, n_features], tf.float32)], reduce_retracing=True)
    def ensemble(x):
        return tf.stack([model(x, training=False) for model in models])

    return ensemble


def predict_chunked(function, X, *, offset, scale, batch_size=PREDICT_BATCH):
    """Run ``function`` over ``X`` in chunks; return float32 ``(n_models, n, k)``.

    Only one chunk is converted (scaled, cast to float32) at a time, so memory is bounded by
    the chunk and the output, not by a float32 copy of ``X``.
    """
    outputs = []
    for start in range(0, X.shape[0], batch_size):
        chunk = np.asarray(X[start:start + batch_size], dtype=np.float32)
        if offset is not None:
            chunk = (chunk - offset) / scale
        outputs.append(function(np.ascontiguousarray(chunk, dtype=np.float32)).numpy())
    return np.concatenate(outputs, axis=1)
