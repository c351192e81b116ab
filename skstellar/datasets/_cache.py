"""An on-disk cache of generated surveys, so that demos draw a large survey once.

A survey is stored as one uncompressed ``.npz`` file per set of arguments (flux and
error per setup, the metadata and label columns), named by a hash of the arguments,
the package version and the shipped line list. The folder is ``$SKSTELLAR_CACHE`` or
``~/.cache/skstellar``, or the one passed as ``cache=``.
"""

import hashlib
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..spectra import SetupData, SpectralSet
from ._linelist import LINELIST_FILE
from ._setups import SETUPS

__all__ = ["cache_dir", "cache_file", "load", "save"]


def cache_dir(cache):
    """The folder for ``cache`` (True: the default; str or Path: that folder)."""
    if cache is True:
        env = os.environ.get("SKSTELLAR_CACHE")
        return Path(env) if env else Path.home() / ".cache" / "skstellar"
    return Path(cache)


def cache_file(cache, arguments):
    from .. import __version__

    lines = resources.files("skstellar.datasets").joinpath("data", LINELIST_FILE).read_bytes()
    key = json.dumps({"args": arguments, "version": __version__}, sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode() + hashlib.sha256(lines).digest()).hexdigest()[:20]
    return cache_dir(cache) / f"giraffe_survey_{arguments['n_stars']}_{digest}.npz"


def save(path, spectra, labels):
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for s in spectra.setups:
        arrays[f"flux__{s}"] = spectra.flux(s)
        if spectra.error(s) is not None:
            arrays[f"error__{s}"] = spectra.error(s)
    for name, table in (("meta", spectra.meta), ("labels", labels)):
        for c in table.colnames:
            arrays[f"{name}__{c}"] = np.asarray(table[c])
    arrays["setups"] = np.array(spectra.setups)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def load(path):
    with np.load(path, allow_pickle=False) as z:
        setups = [str(s) for s in z["setups"]]
        data = {
            s: SetupData(
                SETUPS[s].wavelength, z[f"flux__{s}"], z[f"error__{s}"] if f"error__{s}" in z else None
            )
            for s in setups
        }
        tables = {"meta": Table(), "labels": Table()}
        for key in z.files:
            name, _, col = key.partition("__")
            if name in tables:
                tables[name][col] = z[key]
    return SpectralSet(data, tables["meta"]), tables["labels"]
