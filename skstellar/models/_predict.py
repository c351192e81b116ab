"""Ensemble prediction through one compiled ``tf.function``, chunk by chunk.

A ``tf.function`` call avoids ``model.predict``'s per-call machinery (design.md measured 6 150
against 4 300 spectra/s). All kept members run in the same graph call, so a chunk is read once
for the whole ensemble.

On a CPU, networks of :func:`build_table2` ("valid" padding) run through a re-formulation of
the same arithmetic that is faster there (docs/models.rst gives the figures): oneDNN is poor at
convolutions of 1 to 8 channels, so each convolution runs on a *blocked* view of its input, B
consecutive pixels side by side as B * c_in channels (a free reshape of the contiguous array),
with a block-Toeplitz kernel of ceil((B + K - 2) / B) + 1 taps mapping them to B * c_out
channels, the B output pixels of a block. Those are ordered so that max pooling is an
element-wise max of contiguous slices, done before the bias and the LeakyReLU (both commute
with it: the slope is positive), which halves their work; XLA compiles the whole graph and
fuses these element-wise steps. Other networks, and every network on a GPU, run the Keras
models themselves.
"""

import numpy as np

# Spectra per graph call on the CPU path, and pixels per block of each convolution (the last
# value for any further ones), chosen with benchmarks/bench_predict.py.
PREDICT_BATCH = 256
CONV_BLOCKS = (8, 8, 4)


def make_ensemble_function(models, n_features, recipe=None):
    """A compiled function mapping a float32 ``(b, n_features)`` batch to ``(n_models, b, k)``.

    ``recipe`` (``CNNLabelRegressor.recipe_``, None for a user's builder) enables the blocked
    CPU path for Table-2 networks.
    """
    import tensorflow as tf

    if recipe is not None and recipe.get("padding") == "valid" and not tf.config.list_physical_devices("GPU"):
        return _blocked_ensemble_function(models, n_features, recipe)

    @tf.function(input_signature=[tf.TensorSpec([None, n_features], tf.float32)], reduce_retracing=True)
    def ensemble(x):
        return tf.stack([model(x, training=False) for model in models])

    return ensemble


def block_toeplitz(kernel, block):
    """A ``(K, c_in, c_out)`` convolution kernel as ``(T, block * c_in, block * c_out)`` acting on blocks.

    Output pixel ``block * j + p`` reads input pixel ``block * (j + t) + q`` through tap
    ``k = block * t + q - p`` of the original kernel (zero where ``k`` is outside ``[0, K)``).
    """
    K, c_in, c_out = kernel.shape
    taps = (block + K - 2) // block + 1
    out = np.zeros((taps, block, c_in, block, c_out), dtype=np.float32)
    for t in range(taps):
        for q in range(block):
            for p in range(block):
                k = block * t + q - p
                if 0 <= k < K:
                    out[t, q, :, p, :] = kernel[k]
    return out.reshape(taps, block * c_in, block * c_out)


def _table2_layers(model):
    """Convolution and dense (kernel, bias) pairs of a build_table2 network, and its linear skip."""
    import keras

    convs, denses, skip = [], [], None
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv1D):
            convs.append([np.asarray(w, dtype=np.float32) for w in layer.get_weights()])
        elif isinstance(layer, keras.layers.Dense):
            weights = [np.asarray(w, dtype=np.float32) for w in layer.get_weights()]
            if layer.name == "linear_skip":
                skip = weights
            else:
                denses.append(weights)
    return convs, denses, skip


def _plan(n_features, convs, pool_size):
    """Static shapes of each blocked convolution stage (pure arithmetic)."""
    stages, length, stored = [], n_features, n_features  # valid pixels, pixels held in the array
    for i, (kernel, bias) in enumerate(convs):
        K, c_in, c_out = kernel.shape
        pool = pool_size if i < len(convs) - 1 else 1
        block = pool * max(1, round(CONV_BLOCKS[min(i, len(CONV_BLOCKS) - 1)] / pool))
        valid_out = length - K + 1
        blocks_out = -(-valid_out // block)
        weights = block_toeplitz(kernel, block)
        # Output columns ordered (phase within the pooling window, pooling window, channel): the
        # pooling is then an element-wise max of `pool` contiguous slices, and its result is
        # already the blocked layout of the pooled signal.
        order = np.arange(block * c_out).reshape(block // pool, pool, c_out).transpose(1, 0, 2).ravel()
        weights = weights[:, :, order]
        stages.append({"block": block, "c_in": c_in, "c_out": c_out, "blocks_out": blocks_out,
                       "blocks_in": blocks_out + weights.shape[0] - 1, "stored": stored, "pool": pool,
                       "kernel": weights, "bias": bias})
        length = valid_out // pool
        # Pixels past the valid ones are finite garbage from the padding; they reach only outputs
        # that are themselves past the valid ones, which are cut before the dense layers.
        stored = blocks_out * block // pool
    return stages, length


def _blocked_ensemble_function(models, n_features, recipe):
    import tensorflow as tf

    slope = float(recipe["negative_slope"])
    pool_size = int(recipe["pool_size"])
    plans = []
    for model in models:
        convs, denses, skip = _table2_layers(model)
        stages, flat_length = _plan(n_features, convs, pool_size)
        for stage in stages:
            stage["kernel"], stage["bias"] = tf.constant(stage["kernel"]), tf.constant(stage["bias"])
        plans.append((stages, flat_length * stages[-1]["c_out"],
                      [(tf.constant(k), tf.constant(b)) for k, b in denses],
                      None if skip is None else (tf.constant(skip[0]), tf.constant(skip[1]))))

    def leaky(h):
        return tf.maximum(h, slope * h)

    def member(x, stages, n_flat, denses, skip):
        n = tf.shape(x)[0]
        h = x
        for s in stages:
            held, needed = s["stored"] * s["c_in"], s["blocks_in"] * s["block"] * s["c_in"]
            h = tf.pad(h, [[0, 0], [0, needed - held]]) if needed > held else h[:, :needed]
            h = tf.reshape(h, [n, s["blocks_in"], s["block"] * s["c_in"]])
            h = tf.nn.conv1d(h, s["kernel"], 1, "VALID")
            width = s["block"] // s["pool"] * s["c_out"]
            pooled = h[..., :width]
            for r in range(1, s["pool"]):
                pooled = tf.maximum(pooled, h[..., r * width:(r + 1) * width])
            h = leaky(pooled + tf.tile(s["bias"], [s["block"] // s["pool"]]))
            h = tf.reshape(h, [n, -1])
        h = h[:, :n_flat]
        for i, (kernel, bias) in enumerate(denses):
            h = tf.matmul(h, kernel) + bias
            if i < len(denses) - 1:
                h = leaky(h)
        if skip is not None:
            h = h + tf.matmul(x, skip[0]) + skip[1]
        return h

    @tf.function(jit_compile=True)
    def compiled(x):
        return tf.stack([member(x, *plan) for plan in plans])

    @tf.function(input_signature=[tf.TensorSpec([None, n_features], tf.float32)], reduce_retracing=True)
    def ensemble(x):
        return compiled(x)

    return ensemble


def predict_chunked(function, X, *, offset, scale, batch_size=None):
    """Run ``function`` over ``X`` in chunks; return float32 ``(n_models, n, k)``.

    Only one chunk is converted (scaled, cast to float32) at a time, so memory is bounded by
    the chunk and the output, not by a float32 copy of ``X``. A short chunk is padded to
    ``batch_size`` rows: XLA compiles once per shape.
    """
    batch_size = PREDICT_BATCH if batch_size is None else batch_size
    outputs = []
    n = X.shape[0]
    chunk = np.zeros((batch_size, X.shape[1]), dtype=np.float32)  # one buffer for all chunks
    for start in range(0, n, batch_size):
        rows = min(batch_size, n - start)
        chunk[:rows] = X[start:start + rows]
        chunk[rows:] = 0.0  # the padding of a short last chunk
        if offset is not None:
            chunk[:rows] -= offset
            chunk[:rows] /= scale
        outputs.append(function(chunk).numpy()[:, :rows])
    return np.concatenate(outputs, axis=1)
