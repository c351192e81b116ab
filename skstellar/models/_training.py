"""Training of one ensemble member, and the (de)serialisation of members as ``.keras`` bytes.

Functions here run in joblib workers (possibly on a Dask cluster): they take and return only
picklable values (numpy arrays, dicts, bytes), and import Keras on their own.
"""

import os
import tempfile
import time

import numpy as np

from ._linear import bootstrap_counts, fit_ridge_skip

EAGER_MAX_STEPS = 32


def _masked_mse(y_true, y_pred):
    # NaN labels carry no gradient: a star missing one label still trains the others. The
    # per-star sum is divided by the number of labels, so with no NaN this is the plain MSE.
    from keras import ops

    present = ops.logical_not(ops.isnan(y_true))
    diff = ops.where(present, y_pred - ops.where(present, y_true, 0.0), 0.0)
    return ops.sum(ops.square(diff), axis=-1) / ops.cast(ops.shape(y_true)[-1], diff.dtype)


def make_optimizer(name, learning_rate):
    import keras

    classes = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    return classes[name](learning_rate=learning_rate)


def model_to_bytes(model):
    """The model as the bytes of a ``.keras`` file (architecture and weights, no optimizer)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "member.keras")
        model.save(path)
        with open(path, "rb") as fh:
            return fh.read()


def model_from_bytes(data):
    import keras

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "member.keras")
        with open(path, "wb") as fh:
            fh.write(data)
        return keras.saving.load_model(path, compile=False)


def _epoch_timer(keras):
    """A callback that adds each epoch's wall time (training and validation) to the history.

    Keras' History callback runs after the user's callbacks and records what they put in
    ``logs``, as it records ReduceLROnPlateau's ``learning_rate``.
    """

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["epoch_seconds"] = time.perf_counter() - self._start

    return EpochTimer()


def fit_member(
    X_train, y_train, X_val, y_val, *, seed, builder, builder_kwargs, optimizer, learning_rate, batch_size,
    max_epochs, patience, verbose, lr_schedule="constant", ridge_skip=False, bootstrap=False, ridge=None,
):
    """Train one network; return ``(keras_bytes, best_val_loss, history, ridge_alpha)``.

    Early stopping on the validation loss with the best weights restored. ``seed`` fixes the
    initial weights, the dropout masks, the batch order and, with ``bootstrap``, the resample of
    the training stars the member trains on (the validation set is unchanged). ``ridge_skip``
    fits ridge regression on those stars (:func:`fit_ridge_skip`), freezes the model's
    ``linear_skip`` layer at it and starts its ``deep`` output layer at zero: the member starts
    as that linear model and learns the residual; ``ridge``, the ``(kernel, bias, alpha)`` of
    :func:`fit_ridge_skip` already solved for these stars, saves the solve (members without
    ``bootstrap`` share one). ``ridge_alpha`` is the penalty per label (None without
    ``ridge_skip``).
    """
    counts = bootstrap_counts(len(X_train), seed) if bootstrap else None
    ridge_alpha = None
    if ridge_skip:
        kernel, bias, ridge_alpha = ridge if ridge is not None else fit_ridge_skip(
            X_train, y_train, X_val, y_val, sample_weight=counts)
    if bootstrap:
        # Repeats as rows (not sample weights): an epoch keeps its number of steps.
        rows = np.repeat(np.arange(len(X_train)), counts)
        X_train, y_train = X_train[rows], y_train[rows]

    import keras

    keras.utils.set_random_seed(int(seed))
    model = builder(X_train.shape[1], y_train.shape[1], **builder_kwargs)
    if ridge_skip:
        skip = model.get_layer("linear_skip")
        skip.set_weights([kernel, bias])
        skip.trainable = False
        deep = model.get_layer("deep")
        deep.set_weights([np.zeros_like(w) for w in deep.get_weights()])
    # Tracing the train and test steps costs about 1.5 s; a fit of a few dozen steps in all
    # (quick trials, the estimator checks) runs faster eagerly.
    n_steps = max_epochs * -(-len(X_train) // batch_size)
    model.compile(optimizer=make_optimizer(optimizer, learning_rate), loss=_masked_mse,
                  run_eagerly=n_steps <= EAGER_MAX_STEPS)
    callbacks = [_epoch_timer(keras),
                 keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)]
    if lr_schedule == "plateau":
        # Halve the step when the validation loss stalls for a third of the early-stopping patience,
        # so that a member settles into its minimum before it is stopped.
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=max(patience // 3, 1), min_lr=learning_rate / 64))
    fitted = model.fit(
        X_train, y_train, validation_data=(X_val, y_val), epochs=max_epochs, batch_size=batch_size,
        callbacks=callbacks, verbose=2 if verbose > 1 else 0, shuffle=True,
    )
    history = {key: np.asarray(values, dtype=np.float64) for key, values in fitted.history.items()}
    best = float(np.nanmin(history["val_loss"])) if np.isfinite(history["val_loss"]).any() else np.inf
    # Store an uncompiled copy: the optimizer state is not needed to predict and triples the size.
    try:
        bare = keras.models.clone_model(model)
        bare.set_weights(model.get_weights())
    except Exception:  # a user's subclassed model may not clone; keep it whole
        bare = model
    return model_to_bytes(bare), best, history, ridge_alpha
