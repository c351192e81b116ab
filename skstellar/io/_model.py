"""Model files: a fitted pipeline saved with joblib together with a manifest of what it is."""

from __future__ import annotations

import datetime
import hashlib
import shlex
import sys
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = ["load_model", "model_manifest", "save_model"]

_MARKER = "skstellar-model"
_FORMAT_VERSION = 1
# distributions whose versions a model depends on; TensorFlow ships under several names
_PACKAGES = {
    "scikit-learn": ("scikit-learn",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly"),
    "keras": ("keras",),
    "numpy": ("numpy",),
}


def model_manifest(model, *, training_labels=None, label_units=None, preset=None, extra=None):
    """What a fitted pipeline is, as a dict of plain Python values (JSON-compatible).

    Parameters
    ----------
    model : Pipeline or estimator
        Fitted. Its wavelength grids are read from the step that has ``grids_`` (the
        :class:`~skstellar.preprocessing.Rebinner`), its labels from ``label_names_``.
    training_labels : array-like of shape (n_stars, n_labels), optional
        The labels it was trained on (NaN: missing): gives the training-set size and the
        range of each label.
    label_units : dict of str to str, optional
        Unit of each label, e.g. ``{"teff": "K"}``.
    preset : str, optional
        Name of the preprocessing preset (e.g. ``"ambrosch2023"``).
    extra : dict, optional
        More entries (e.g. the command line's ``"validation"`` summary), stored as given.

    Returns
    -------
    dict
        ``format_version``, ``versions`` (python, skstellar, scikit-learn, tensorflow,
        keras, numpy; None for one not installed), ``date`` (UTC, ISO 8601),
        ``command`` (``sys.argv``), ``preset``, ``setups``, ``grids`` (per setup: first and
        last bin centre, step, number of bins), ``grid_sha256`` (of the float64 bin centres,
        setups in order), ``n_features``, ``labels`` (name and unit), ``training`` (size
        and per-label ``min``/``max``/``n``), ``filter`` (the parameters of each step with
        "Filter" in its class name), ``steps`` (class and parameters of every step), then
        ``extra``.
    """
    from .. import __version__

    steps = _steps(model)
    rebinner = next((step for _, step in steps if hasattr(step, "grids_")), None)
    grids = {} if rebinner is None else {s: np.asarray(g, dtype=np.float64) for s, g in rebinner.grids_.items()}
    digest = hashlib.sha256()
    for setup, grid in grids.items():
        digest.update(setup.encode())
        digest.update(np.ascontiguousarray(grid).tobytes())
    final = steps[-1][1] if steps else model
    names = [str(n) for n in getattr(final, "label_names_", [])]
    units = dict(label_units or {})
    manifest = {
        "format_version": _FORMAT_VERSION,
        "versions": {"python": sys.version.split()[0], "skstellar": __version__,
                     **{name: _version(dists) for name, dists in _PACKAGES.items()}},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(sys.argv),
        "preset": preset,
        "setups": list(grids),
        "grids": {s: {"first": float(g[0]), "last": float(g[-1]), "n": int(g.size),
                      "step": float(rebinner.steps_[s])} for s, g in grids.items()},
        "grid_sha256": digest.hexdigest() if grids else None,
        "n_features": _int_or_none(getattr(final, "n_features_in_", None)),
        "labels": [{"name": n, "unit": units.get(n, "")} for n in names],
        "training": _training(training_labels, names),
        "filter": {name: _plain(step.get_params(deep=False)) for name, step in steps
                   if "Filter" in type(step).__name__},
        "steps": [{"name": name, "class": _class_path(step),
                   "params": _plain(step.get_params(deep=False)) if hasattr(step, "get_params") else {}}
                  for name, step in steps],
    }
    manifest.update(_plain(dict(extra or {})))
    return manifest


def save_model(model, path, *, training_labels=None, label_units=None, preset=None, extra=None,
               overwrite=True):
    """Save a fitted pipeline with its manifest (joblib), for :func:`load_model`.

    Parameters
    ----------
    model : Pipeline or estimator
        Fitted.
    path : str or path-like
        The file, e.g. ``"model.joblib"``.
    training_labels, label_units, preset, extra
        Passed to :func:`model_manifest`.
    overwrite : bool, default=True
        Replace an existing file.

    Returns
    -------
    dict
        The manifest stored.

    See Also
    --------
    load_model : Load it back, checking the skstellar version.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skstellar.io import load_model, save_model
    >>> path = Path(tempfile.mkdtemp()) / "model.joblib"
    >>> y = np.arange(10.0)
    >>> manifest = save_model(Ridge().fit(np.c_[y, y], y), path, training_labels=y)
    >>> model, manifest = load_model(path, with_manifest=True)
    >>> manifest["training"]["n_stars"], manifest["training"]["labels"]["y0"]["max"]
    (10, 9.0)
    """
    import joblib

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    manifest = model_manifest(model, training_labels=training_labels, label_units=label_units,
                              preset=preset, extra=extra)
    joblib.dump({"format": _MARKER, "manifest": manifest, "model": model}, path)
    return manifest


def load_model(path, *, with_manifest=False):
    """Load a model saved by :func:`save_model` (or a pipeline saved with ``joblib.dump``).

    A model saved by another skstellar version loads with a ``UserWarning`` naming both
    versions: estimators may have changed between them.

    Parameters
    ----------
    path : str or path-like
    with_manifest : bool, default=False
        Also return the manifest (None for a plain ``joblib.dump`` file).

    Returns
    -------
    model : Pipeline or estimator
    manifest : dict or None
        Only with ``with_manifest=True``.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file is not a joblib file, or holds no fitted estimator (naming the file).
    """
    import joblib

    from .. import __version__

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file.")
    try:
        content = joblib.load(path)
    except Exception as exc:  # pickle raises anything from a foreign file
        raise ValueError(f"{path}: not a skstellar model file (joblib cannot load it: {exc}).") from exc
    if isinstance(content, dict) and content.get("format") == _MARKER:
        model, manifest = content["model"], content["manifest"]
        saved = manifest.get("versions", {}).get("skstellar")
        if saved != __version__:
            warnings.warn(
                f"{path} was saved by skstellar {saved} and is loaded by skstellar {__version__}; "
                "its estimators may behave differently: retrain it or install that version.",
                UserWarning, stacklevel=2,
            )
    elif hasattr(content, "predict") and hasattr(content, "get_params"):
        model, manifest = content, None
    else:
        raise ValueError(
            f"{path}: not a skstellar model file (it holds a {type(content).__name__}, "
            "not a fitted estimator)."
        )
    return (model, manifest) if with_manifest else model


def _steps(model):
    """(name, step) of a pipeline, nested pipelines expanded; [] for a lone estimator."""
    if not hasattr(model, "steps"):
        return [("model", model)]
    named = []
    for name, step in model.steps:
        if hasattr(step, "steps"):
            named.extend((f"{name}__{n}", s) for n, s in _steps(step))
        elif step is not None and step != "passthrough":
            named.append((name, step))
    return named


def _training(y, names):
    if y is None:
        return None
    y = np.asarray(y, dtype=np.float64)
    y = y.reshape(-1, 1) if y.ndim == 1 else y
    names = names if len(names) == y.shape[1] else [f"y{j}" for j in range(y.shape[1])]
    labels = {}
    for name, column in zip(names, y.T):
        have = column[np.isfinite(column)]
        labels[name] = {"n": int(have.size), "min": float(have.min()) if have.size else None,
                        "max": float(have.max()) if have.size else None}
    return {"n_stars": int(y.shape[0]), "labels": labels}


def _class_path(obj):
    """Where users import the class from: ``skstellar.models.X``, not ``skstellar.models._ensemble.X``."""
    module = type(obj).__module__
    if module.startswith("skstellar.") and "._" in module:
        module = module.split("._")[0]
    return f"{module}.{type(obj).__qualname__}"


def _version(dists):
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _int_or_none(value):
    return None if value is None else int(value)


def _plain(value):
    """``value`` as JSON-compatible Python: tuples to lists, numpy to Python, others to repr."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
