"""Find the estimators that skstellar defines (for the common estimator checks)."""

import inspect
import pkgutil
from importlib import import_module

from sklearn.base import BaseEstimator


def all_estimators():
    """Every public estimator class defined in skstellar, sorted by name.

    Imports every public submodule, TensorFlow included, so it is meant for tests.

    Returns
    -------
    list of (name, class)
    """
    import skstellar

    found = {}
    for info in pkgutil.walk_packages(skstellar.__path__, prefix="skstellar."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]) or info.name.endswith("__main__"):
            continue
        module = import_module(info.name)
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, BaseEstimator)
                and obj.__module__.startswith("skstellar.")
                and not name.startswith("_")
                and not inspect.isabstract(obj)
            ):
                found[name] = obj
    return sorted(found.items())
