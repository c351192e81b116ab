"""Assembling spectra read file by file into the per-setup arrays of a SpectralSet."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..spectra import SpectralSet
from ..utils._status import StarFlag, add_flags
from ._fitsfile import read_guarded

_MAX_LISTED = 20  # longer lists in error messages are cut, with a count of the rest


def read_all(read_one, args, n_jobs):
    """``[read_one(*a) for a in args]``, in parallel processes when ``n_jobs`` asks for it.

    Reading is dominated by astropy's header parsing (pure Python), so threads do not help;
    joblib's process pool does, in input order, re-raising a worker's error as it is. The
    first of ``args`` is the path: any failure on a file is a ReadError naming it.
    """
    if n_jobs is None or n_jobs == 1 or len(args) < 2:
        return [read_guarded(read_one, *a) for a in args]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs, batch_size="auto")(
        delayed(read_guarded)(read_one, *a) for a in args
    )


@dataclass
class FileSpectrum:
    """One star's spectrum in one setup, as read from one file."""

    path: Path
    id: str
    setup: str
    wavelength: np.ndarray
    flux: np.ndarray
    error: np.ndarray | None = None
    meta: dict = field(default_factory=dict)


def index_by_id(spectra: list[FileSpectrum]) -> dict[str, dict[str, FileSpectrum]]:
    """``{setup: {id: spectrum}}`` in input order; a star read twice in a setup is an error."""
    by_setup: dict[str, dict[str, FileSpectrum]] = {}
    for spec in spectra:
        seen = by_setup.setdefault(spec.setup, {})
        if spec.id in seen:
            raise ValueError(
                f"Star {spec.id!r} appears twice in setup {spec.setup!r}: in {seen[spec.id].path} "
                f"and in {spec.path}. Give each star one file per setup."
            )
        seen[spec.id] = spec
    return by_setup


ON_BAD = ("raise", "drop", "flag")


def check_on_bad(on_bad):
    if on_bad not in ON_BAD:
        raise ValueError(f'on_bad must be "raise", "drop" or "flag"; got {on_bad!r}.')


def combine_setups(by_setup, on_bad: str, meta_table, **table_meta) -> SpectralSet:
    """One set of the stars matched across the setups of ``by_setup`` (see :func:`index_by_id`).

    ``on_bad`` says what becomes of a star lacking a setup (see :func:`read_ges_giraffe`).
    Setups are ordered by wavelength. ``meta_table(ids, by_setup, setups)`` builds the meta
    table, which gets ``table_meta`` and ``dropped`` (``{id: [missing setups]}``) in its
    ``meta``; with ``"flag"`` a missing setup is all NaN (meta values NaN) and its status
    bit ``SETUP_MISSING`` is set.
    """
    kept, missing = match_setups(by_setup, on_bad)
    flagged = {}
    if on_bad == "flag" and missing:
        for stars in by_setup.values():
            template = next(iter(stars.values()))
            for i in kept:
                if i not in stars:
                    stars[i] = _placeholder(template, i)
        flagged, missing = missing, {}
    order = sorted(by_setup, key=lambda s: min(sp.wavelength[0] for sp in by_setup[s].values()))
    arrays = {s: stack_setup(s, [by_setup[s][i] for i in kept]) for s in order}
    meta = meta_table(kept, by_setup, order)
    meta.meta.update(table_meta)
    meta.meta["dropped"] = missing
    if on_bad == "flag":
        for setup in order:
            lacking = np.array([setup in flagged.get(i, ()) for i in kept])
            add_flags(meta, lacking, StarFlag.SETUP_MISSING, setup)
    return SpectralSet.from_arrays(arrays, meta=meta)


def _placeholder(template: FileSpectrum, star_id: str) -> FileSpectrum:
    """A star's missing setup: all NaN on the grid of another star's file of that setup."""
    nan = np.full_like(template.flux, np.nan)
    meta = {key: np.nan for key in template.meta}
    return FileSpectrum(None, star_id, template.setup, template.wavelength, nan,
                        None if template.error is None else nan.copy(), meta)


def setup_values(ids, by_setup, setups, key) -> np.ndarray:
    """``(len(setups), len(ids))`` float array of the meta value ``key`` of each star's file per setup."""
    return np.array([[by_setup[s][i].meta[key] for i in ids] for s in setups], dtype=np.float64)


def add_file_columns(meta, ids, by_setup, setups):
    """``file_<setup>``: the file each star's setup was read from ("" for a missing one)."""
    for s in setups:
        meta[f"file_{s}"] = np.array(
            ["" if by_setup[s][i].path is None else str(by_setup[s][i].path) for i in ids], dtype=str
        )


def match_setups(by_setup, on_missing: str):
    """Ids present in every setup (input order) and ``{id: [missing setups]}`` of the others.

    With ``on_missing="raise"`` an incomplete star is an error listing ids and setups;
    with ``"flag"`` every star is kept (all ids returned).
    """
    order = list(dict.fromkeys(i for stars in by_setup.values() for i in stars))
    missing = {
        i: [setup for setup, stars in by_setup.items() if i not in stars] for i in order
    }
    missing = {i: m for i, m in missing.items() if m}
    if missing and on_missing == "raise":
        raise ValueError(
            f"{len(missing)} of {len(order)} stars lack a setup (setups read: "
            f"{sorted(by_setup)}): {describe_missing(missing)}. "
            'Add their files, or pass on_bad="drop" to leave these stars out (or "flag" to keep them flagged).'
        )
    if on_missing == "flag":  # every star is kept; the caller fills in the missing setups
        return order, missing
    kept = [i for i in order if i not in missing]
    if not kept:
        raise ValueError(
            f"No star has a spectrum in every setup {sorted(by_setup)}: "
            f"{describe_missing(missing)}."
        )
    return kept, missing


def describe_missing(missing: dict) -> str:
    items = [f"{i!r} (no {', '.join(m)})" for i, m in missing.items()]
    text = "; ".join(items[:_MAX_LISTED])
    if len(items) > _MAX_LISTED:
        text += f"; and {len(items) - _MAX_LISTED} more"
    return text


def stack_setup(setup: str, spectra: list[FileSpectrum]):
    """``(wavelength, flux, error)`` of one setup: a shared grid when all files agree."""
    counts: dict[int, Path] = {}
    for spec in spectra:
        counts.setdefault(spec.flux.size, spec.path)
    if len(counts) > 1:
        examples = ", ".join(f"{n} pixels in {p}" for n, p in sorted(counts.items()))
        raise ValueError(
            f"setup {setup!r}: the files have different numbers of pixels ({examples}). "
            "A setup needs one pixel count for all stars: read such files as separate setups "
            "or resample them to a common grid first."
        )
    first = spectra[0].wavelength
    shared = all(np.array_equal(s.wavelength, first) for s in spectra[1:])
    wave = first if shared else np.stack([s.wavelength for s in spectra])
    flux = np.stack([s.flux for s in spectra])
    errors = [s.error for s in spectra]
    with_error = [e is not None for e in errors]
    if any(with_error) and not all(with_error):
        without = next(s.path for s in spectra if s.error is None)
        raise ValueError(f"setup {setup!r}: {without} has no flux error but other files do.")
    error = np.stack(errors) if all(with_error) else None
    return (wave, flux) if error is None else (wave, flux, error)
