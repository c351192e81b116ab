"""The network of Ambrosch et al. 2023, Table 2, and the training recipes (presets).

Keras is imported inside the builder so that importing :mod:`skstellar.models` stays cheap.
"""

import math

# Every recipe parameter of CNNLabelRegressor that a preset fills in when the user leaves it None.
# "thesis" is Table 2 trained as in the thesis (plain SGD, lr 1e-4, batch 16, raw normalised flux).
# "default" is the same convolutional trunk with the recipe measured here to converge fast
# (docs/models.rst gives the figures): Adam 1e-3 at batch 64, flux centred on the continuum
# (1 - flux), no dropout on the flattened convolutional features, the learning rate halved
# when the validation loss stalls, and a frozen ridge map of the pixels added to the output
# (the network learns the ridge residual), with members on bootstrap resamples whose spread is
# scaled per label on the validation stars into an error bar. The thesis reports the raw spread.
PRESETS = {
    "thesis": {
        "filters": (8, 6, 4),
        "kernel_size": 20,
        "pool_size": 2,
        "dense_units": (64, 128, 32),
        "dropout": 0.2,
        "flatten_dropout": 0.2,
        "negative_slope": 0.3,
        "padding": "valid",
        "optimizer": "sgd",
        "learning_rate": 1e-4,
        "batch_size": 16,
        "input_scaling": "none",
        "lr_schedule": "constant",
        "linear_skip": "none",
        "bootstrap": False,
        "std_calibration": "none",
        "patience": 30,
    },
    "default": {
        "filters": (8, 6, 4),
        "kernel_size": 20,
        "pool_size": 2,
        "dense_units": (64, 128, 32),
        "dropout": 0.2,
        "flatten_dropout": 0.0,
        "negative_slope": 0.3,
        "padding": "valid",
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "batch_size": 64,
        "input_scaling": "center",
        "lr_schedule": "plateau",
        "linear_skip": "ridge",
        "bootstrap": True,
        "std_calibration": "validation",
        # Ten epochs, with the plateau schedule halving the step after three: the members' best
        # epochs come early, and 30 epochs of patience were 60 % of the training time.
        "patience": 10,
    },
}

ARCHITECTURE_KEYS = ("filters", "kernel_size", "pool_size", "dense_units", "dropout", "flatten_dropout",
                     "negative_slope", "padding", "linear_skip")


def conv_output_length(n_features, *, filters, kernel_size, pool_size, padding, **_):
    """Length of the convolutional trunk's output for ``n_features`` input pixels.

    Pure arithmetic (no TensorFlow), so bad input is refused before Keras is loaded.
    A max-pooling layer follows every convolution but the last, as in Table 2.
    """
    length = n_features
    for i in range(len(filters)):
        if padding == "valid":
            length = length - kernel_size + 1
        if length < 1:
            return length
        if i < len(filters) - 1:
            length = length // pool_size if padding == "valid" else math.ceil(length / pool_size)
    return length


def build_table2(
    n_features,
    n_outputs,
    *,
    filters=(8, 6, 4),
    kernel_size=20,
    pool_size=2,
    dense_units=(64, 128, 32),
    dropout=0.2,
    flatten_dropout=0.2,
    negative_slope=0.3,
    padding="valid",
    linear_skip=False,
):
    """Build the Table 2 network of Ambrosch et al. (2023), or a variant of it.

    Input ``(n, n_features)`` float32 is reshaped to one channel; each convolution
    (``filters[i]`` filters, width ``kernel_size``) is followed by a LeakyReLU and, except the
    last, by max pooling of width ``pool_size``; then Flatten, Dropout(``flatten_dropout``),
    and per entry of ``dense_units`` a Dense layer, LeakyReLU and Dropout(``dropout``); the
    output is a linear Dense layer of ``n_outputs`` units.

    With the defaults, 8669 pixels and 5 labels the network has 560 599 parameters.

    Parameters
    ----------
    n_features : int
        Number of input pixels.
    n_outputs : int
        Number of labels.
    filters : tuple of int, default=(8, 6, 4)
    kernel_size : int, default=20
    pool_size : int, default=2
    dense_units : tuple of int, default=(64, 128, 32)
    dropout : float, default=0.2
        Dropout after each hidden Dense layer.
    flatten_dropout : float, default=0.2
        Dropout on the flattened convolutional features.
    negative_slope : float, default=0.3
        Slope of every LeakyReLU (given explicitly: Keras' default has changed across versions).
    padding : {"valid", "same"}, default="valid"
        Padding of the convolutions and poolings. Table 2 uses "valid".
    linear_skip : bool, default=False
        Add a linear map of the input pixels straight to the output ("wide and deep"): the
        output is the network's plus ``Dense(n_outputs)`` of the input, which adds
        ``(n_features + 1) * n_outputs`` parameters. Table 2 has none.

    Returns
    -------
    model : keras.Model
        Uncompiled.

    Examples
    --------
    >>> from skstellar.models import build_table2
    >>> build_table2(8669, 5).count_params()
    560599
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(n_features,), dtype="float32", name="flux")
    x = layers.Reshape((n_features, 1))(inputs)
    for i, n_filters in enumerate(filters):
        x = layers.Conv1D(n_filters, kernel_size, padding=padding)(x)
        x = layers.LeakyReLU(negative_slope=negative_slope)(x)
        if i < len(filters) - 1:
            x = layers.MaxPooling1D(pool_size, padding=padding)(x)
    x = layers.Flatten()(x)
    if flatten_dropout > 0:
        x = layers.Dropout(flatten_dropout)(x)
    for units in dense_units:
        x = layers.Dense(units)(x)
        x = layers.LeakyReLU(negative_slope=negative_slope)(x)
        if dropout > 0:
            x = layers.Dropout(dropout)(x)
    if linear_skip:
        # Many weak lines each carry a little of a label (Teff above all); a linear map of every
        # pixel sees them without passing through the narrow convolutional trunk.
        wide = layers.Dense(n_outputs, name="linear_skip")(inputs)
        outputs = layers.Add(name="labels")([layers.Dense(n_outputs, name="deep")(x), wide])
    else:
        outputs = layers.Dense(n_outputs, name="labels")(x)
    return keras.Model(inputs, outputs, name="table2_cnn")
