"""Per-star status: what each step did to each star, as bits of one integer.

The steps OR their bits into metadata columns of the SpectralSet they return
(``status_flags`` for the star, ``status_flags_<setup>`` for one of its setups), and
:func:`skstellar.predict_table` turns them into the ``flags`` and ``status`` columns. The
command line adds the file-level bits (:attr:`StarFlag.FILE_UNREADABLE`,
:attr:`StarFlag.SETUP_MISSING`) for stars it could not read.

One policy name for bad input, used by every step and reader: ``on_bad`` —
``"flag"`` (repair or fill with continuum, record the bit, go on) or ``"raise"`` (stop at
the first bad star, naming it); a reader may also ``"drop"`` the star.
"""

from __future__ import annotations

import enum
import warnings

import numpy as np

__all__ = [
    "FLAG_COLUMN",
    "FlaggedTrainingWarning",
    "warn_flagged_in_fit",
    "StarFlag",
    "UNPREDICTABLE",
    "UNTRUSTED",
    "add_flags",
    "collect_flags",
    "combined",
    "describe_flags",
    "flags_doc",
    "resolve_policy",
    "setup_column",
]

FLAG_COLUMN = "status_flags"


class StarFlag(enum.IntFlag):
    """The conditions a star can meet on its way through the chain, one bit each.

    Bits 0-3 are informational (the star was repaired and its labels stand), bits 4-11
    mean its labels cannot be predicted (they are NaN), bits 12-13 that they are not to be
    trusted (``training_like`` is False).
    """

    CLEANED = 1 << 0  #: pixels replaced by the SpectrumCleaner (spikes, zero, NaN)
    NONFINITE = 1 << 1  #: NaN or inf flux in the input (repaired by the cleaner)
    PADDED = 1 << 2  #: some output bins of a setup not covered, padded with continuum
    PADDED_MANY = 1 << 3  #: more than ``max_padded`` of a setup padded: not training-like
    EMPTY_SETUP = 1 << 4  #: a setup without one usable pixel (all zero, NaN or inf)
    FLUX_RANGE = 1 << 5  #: median flux outside ``flux_range`` (not normalised, overflow)
    RV_INVALID = 1 << 6  #: radial velocity missing, non-finite or beyond ``max_rv``
    NO_COVERAGE = 1 << 7  #: a setup covers none of the output grid (e.g. nm, not Angstrom)
    NONFINITE_FLUX = 1 << 8  #: NaN or inf flux reached the rebinner (not cleaned)
    PREDICTION_NONFINITE = 1 << 9  #: the regressor returned a NaN or inf label
    FILE_UNREADABLE = 1 << 10  #: a file of the star could not be read (command line)
    SETUP_MISSING = 1 << 11  #: no file for one of the star's setups (reader, command line)
    NOT_TRAINING_LIKE = 1 << 12  #: the similarity filter judged the spectrum training-unlike
    LABELS_UNEXPLAINED = 1 << 13  #: the predicted labels do not reproduce the spectrum (label check)


#: What each bit means, as the ``status`` column spells it.
_TEXT = {  # most serious first: the status reads from the reason labels are missing
    StarFlag.FILE_UNREADABLE: "file unreadable",
    StarFlag.SETUP_MISSING: "setup missing",
    StarFlag.EMPTY_SETUP: "no usable pixel",
    StarFlag.NO_COVERAGE: "covers none of the grid",
    StarFlag.FLUX_RANGE: "flux out of range (not normalised?)",
    StarFlag.RV_INVALID: "radial velocity missing or invalid",
    StarFlag.NONFINITE_FLUX: "NaN/inf flux not cleaned",
    StarFlag.PREDICTION_NONFINITE: "non-finite prediction",
    StarFlag.PADDED_MANY: "padded over the allowed fraction",
    StarFlag.NOT_TRAINING_LIKE: "unlike the training set",
    StarFlag.LABELS_UNEXPLAINED: "labels do not explain the spectrum",
    StarFlag.PADDED: "padded with continuum",
    StarFlag.NONFINITE: "NaN/inf flux repaired",
    StarFlag.CLEANED: "pixels cleaned",
}

#: Bits after which a star's labels are NaN: its spectrum was replaced by a placeholder.
UNPREDICTABLE = (
    StarFlag.EMPTY_SETUP
    | StarFlag.FLUX_RANGE
    | StarFlag.RV_INVALID
    | StarFlag.NO_COVERAGE
    | StarFlag.NONFINITE_FLUX
    | StarFlag.PREDICTION_NONFINITE
    | StarFlag.FILE_UNREADABLE
    | StarFlag.SETUP_MISSING
)
#: Bits after which a star is not training-like.
UNTRUSTED = UNPREDICTABLE | StarFlag.PADDED_MANY | StarFlag.NOT_TRAINING_LIKE | StarFlag.LABELS_UNEXPLAINED



class FlaggedTrainingWarning(UserWarning):
    """Training stars were flagged unusable in ``fit``: they pass on as placeholders."""


def setup_column(setup=None):
    """The metadata column of the star-level bits, or of one setup's bits."""
    return FLAG_COLUMN if setup is None else f"{FLAG_COLUMN}_{setup}"


def add_flags(meta, mask, flag, setup=None):
    """OR ``flag`` into the rows ``mask`` of a status column of ``meta`` (in place).

    The column is created (zeros) on first use; an untouched set gets no column.
    """
    mask = np.asarray(mask, dtype=bool)
    column = setup_column(setup)
    if column not in meta.colnames:
        if not mask.any():
            return
        meta[column] = np.zeros(len(meta), dtype=np.int64)
    values = np.asarray(meta[column], dtype=np.int64) | np.where(mask, int(flag), 0)
    meta[column] = values


def collect_flags(meta, n):
    """The star-level bits ``(n,)`` and the per-setup bits ``{setup: (n,)}`` of ``meta``."""
    star = np.zeros(n, dtype=np.int64)
    per_setup = {}
    if meta is None:
        return star, per_setup
    prefix = FLAG_COLUMN + "_"
    for name in meta.colnames:
        if name == FLAG_COLUMN:
            star |= np.asarray(meta[name], dtype=np.int64)
        elif name.startswith(prefix):
            per_setup[name[len(prefix):]] = np.asarray(meta[name], dtype=np.int64)
    return star, per_setup


def combined(star, per_setup):
    """The star-level bits ORed with those of every setup, ``(n,)`` int64 (a new array)."""
    out = np.array(star, dtype=np.int64)
    for bits in per_setup.values():
        out |= bits
    return out


def describe_flags(star, per_setup=None):
    """One human-readable reason per star: ``"ok"``, or the conditions joined by "; ".

    Star-level conditions come first, then each setup's, prefixed by the setup, e.g.
    ``"radial velocity missing or invalid; HR10: pixels cleaned"``; within each, the most
    serious first. The text is built once per distinct combination of bits, not once per
    star.
    """
    per_setup = per_setup or {}
    setups = list(per_setup)
    matrix = np.column_stack([np.asarray(star, dtype=np.int64)] + [per_setup[s] for s in setups])
    combos, inverse = np.unique(matrix, axis=0, return_inverse=True)
    texts = []
    for combo in combos:
        setup_bits = int(np.bitwise_or.reduce(combo[1:])) if len(setups) else 0
        own = int(combo[0]) & ~setup_bits
        parts = [_words(own)] if own else []
        parts += [f"{s}: {_words(int(bits))}" for s, bits in zip(setups, combo[1:]) if bits]
        texts.append("; ".join(parts) if parts else "ok")
    return np.asarray(texts, dtype=str)[np.ravel(inverse)]


def _words(bits):
    return ", ".join(text for flag, text in _TEXT.items() if bits & flag)


def flags_doc():
    """The meaning of every bit, for a table column's description."""
    return "; ".join(f"{int(flag)} {flag.name}: {text}" for flag, text in _TEXT.items())


def resolve_policy(estimator, old_name, mapping):
    """The estimator's ``on_bad``, or its deprecated ``old_name`` parameter translated.

    ``mapping`` maps the old parameter's values to ``on_bad`` values.
    """
    old = getattr(estimator, old_name, None)
    if old is None:
        return estimator.on_bad
    warnings.warn(
        f"{type(estimator).__name__}({old_name}={old!r}) is deprecated; use "
        f"on_bad={mapping[old]!r} (one name for what every step does with bad input).",
        FutureWarning,
        stacklevel=3,
    )
    return mapping[old]


def unusable(meta, n):
    """Stars whose status bits in ``meta`` withhold their labels, ``(n,)`` bool."""
    return (combined(*collect_flags(meta, n)) & int(UNPREDICTABLE)) != 0


def warn_flagged_in_fit(step, X, out):
    """Warn when ``step.fit_transform`` made training stars unusable.

    A pipeline's ``fit`` cannot drop rows (``y`` would no longer match), so a flagged
    training star reaches the regressor as a placeholder spectrum with real labels: it
    must be said, not learnt from in silence.
    """
    n = len(out)
    new = unusable(out.meta, n) & ~unusable(X.meta, n)
    if new.any():
        i = int(np.argmax(new))
        star, per_setup = collect_flags(out.meta, n)
        why = describe_flags(star[i:i + 1], {k: v[i:i + 1] for k, v in per_setup.items()})[0]
        warnings.warn(
            f"{type(step).__name__}: {int(new.sum())} of {n} training stars are unusable and "
            f"pass on as continuum placeholders, e.g. {out.describe_star(i)}: {why}. Drop them "
            "before fitting (their status is in the meta columns 'status_flags*' of the step's "
            "output), or fit with on_bad='raise' to stop at the first.",
            FlaggedTrainingWarning,
            stacklevel=3,
        )
