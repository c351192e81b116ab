"""Ensemble prediction: all kept members in one call, chunk by chunk.

On a CPU, networks of :func:`build_table2` ("valid" padding) run as machine code generated
for the CPU (:class:`~skstellar.models._cpu_forward.CompiledEnsemble`): oneDNN,
TensorFlow's CPU library, is poor at convolutions of 1 to 8 channels (docs/models.rst gives
the figures). Other networks (a user's builder), and every network on a GPU, run the Keras
models themselves in one ``tf.function``: a call of it avoids ``model.predict``'s
per-call machinery (design.md measured 6 150 against 4 300 spectra/s), and all members run
in the same graph call, so a chunk is read once for the whole ensemble.
"""

import numpy as np

# Spectra per graph call of the Keras path (and per finiteness check of the estimator).
PREDICT_BATCH = 256


def make_ensemble_function(models, n_features, recipe=None):
    """A callable ``f(X, offset=None, scale=None)`` giving float32 ``(n_models, n, k)``.

    ``X`` is float32 ``(n, n_features)``; the members see ``(X - offset) / scale``.
    ``recipe`` (``CNNLabelRegressor.recipe_``, None for a user's builder) enables the
    compiled CPU path for Table-2 networks whose pooling the generated code can block.
    """
    import tensorflow as tf

    if recipe is not None and recipe.get("padding") == "valid" and not tf.config.list_physical_devices("GPU"):
        from ._cpu_forward import CompiledEnsemble
        from ._trunk_ir import UnsupportedTrunk

        try:
            return CompiledEnsemble(models, n_features, recipe)
        except UnsupportedTrunk:  # a pooling width the generated code does not block: Keras runs it
            pass
    return KerasEnsemble(models, n_features)


class KerasEnsemble:
    """The Keras models in one compiled ``tf.function``, run over chunks of ``X``."""

    def __init__(self, models, n_features):
        import tensorflow as tf

        @tf.function(input_signature=[tf.TensorSpec([None, n_features], tf.float32)], reduce_retracing=True)
        def ensemble(x):
            return tf.stack([model(x, training=False) for model in models])

        self.function = ensemble

    def __call__(self, X, offset=None, scale=None, batch_size=None):
        """Run the function over ``X`` in chunks; return float32 ``(n_models, n, k)``.

        Only one chunk is converted (scaled, cast to float32) at a time, so memory is
        bounded by the chunk and the output, not by a float32 copy of ``X``.
        """
        batch_size = PREDICT_BATCH if batch_size is None else batch_size
        outputs = []
        n = X.shape[0]
        chunk = np.zeros((min(batch_size, n), X.shape[1]), dtype=np.float32)  # one buffer for all chunks
        for start in range(0, n, batch_size):
            rows = min(batch_size, n - start)
            part = chunk[:rows]
            part[:] = X[start:start + rows]
            if offset is not None:
                part -= offset
                part /= scale
            outputs.append(self.function(part).numpy())
        return np.concatenate(outputs, axis=1)


def table2_layers(model):
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
