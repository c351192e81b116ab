"""Abundance scales: A(X) = log10(N_X / N_H) + 12 to and from [X/H] and [X/Fe].

The solar values are those of ``skstellar._solar`` (Grevesse, Asplund & Sauval 2007, the
Gaia-ESO scale) unless another table is passed.
"""

from collections.abc import Mapping

import numpy as np

from .._solar import SOLAR_ABUNDANCES

__all__ = ["from_xfe", "from_xh", "to_xfe", "to_xh"]


def _solar(element, solar):
    """A(X)_sun for a symbol or an array of symbols (case-insensitive: "MG", "mg", "Mg")."""
    table = SOLAR_ABUNDANCES if solar is None else solar
    if not isinstance(table, Mapping):
        raise TypeError(f"solar must be a mapping of element symbol to A(X), got {type(table).__name__}.")
    symbols = np.asarray(element)
    if symbols.dtype.kind not in "UO" or symbols.size == 0:
        raise TypeError(f"element must be an element symbol such as 'Mg' (or an array of them), got {element!r}.")

    def one(symbol):
        if not isinstance(symbol, str):
            raise TypeError(f"element must be an element symbol such as 'Mg', got {symbol!r}.")
        key = symbol.strip().capitalize()
        if key not in table:
            raise KeyError(f"no solar abundance for element {symbol!r} in the solar table (known: {', '.join(table)}).")
        value = float(table[key])
        if not np.isfinite(value):
            raise ValueError(f"the solar table's A({key}) is {value}, not a finite number.")
        return value

    if symbols.ndim == 0:
        return one(symbols.item())
    return np.array([one(s) for s in symbols.ravel()]).reshape(symbols.shape)


def _scalar(out):
    # A scalar in gives a Python float out, an array an array.
    return float(out) if np.ndim(out) == 0 else out


def _values(x, name):
    try:
        out = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numbers (a scalar or an array), got {type(x).__name__}.") from None
    return out


def to_xh(abundance, element, *, solar=None):
    """[X/H] = A(X) - A(X)_sun.

    Parameters
    ----------
    abundance : float or array-like
        A(X) = log10(N_X / N_H) + 12. NaN stays NaN.
    element : str or array-like of str
        Element symbol(s), case-insensitive; an array broadcasts against ``abundance``.
    solar : mapping, default=None
        Symbol -> solar A(X); None: Grevesse, Asplund & Sauval (2007).

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> from skstellar.science import to_xh
    >>> round(to_xh(3.05, "Li"), 2)
    2.0
    >>> to_xh([7.45, 7.0], "Fe").round(2).tolist()
    [0.0, -0.45]
    """
    out = _values(abundance, "abundance") - _solar(element, solar)
    return _scalar(out)


def from_xh(xh, element, *, solar=None):
    """A(X) = [X/H] + A(X)_sun, the inverse of :func:`to_xh`.

    Parameters
    ----------
    xh : float or array-like
        [X/H]. NaN stays NaN.
    element : str or array-like of str
        Element symbol(s), case-insensitive.
    solar : mapping, default=None
        Symbol -> solar A(X); None: Grevesse, Asplund & Sauval (2007).

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> from skstellar.science import from_xh
    >>> from_xh(-0.5, "Mg")
    7.03
    """
    out = _values(xh, "xh") + _solar(element, solar)
    return _scalar(out)


def to_xfe(abundance, abundance_fe, element, *, solar=None):
    """[X/Fe] = (A(X) - A(X)_sun) - (A(Fe) - A(Fe)_sun).

    Parameters
    ----------
    abundance : float or array-like
        A(X) of the element.
    abundance_fe : float or array-like
        A(Fe) of the same stars.
    element : str or array-like of str
        Symbol(s) of X.
    solar : mapping, default=None
        Symbol -> solar A(X); None: Grevesse, Asplund & Sauval (2007).

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> from skstellar.science import to_xfe
    >>> round(to_xfe(7.33, 7.05, "Mg"), 2)  # [Mg/H] = -0.2 in a star with [Fe/H] = -0.4
    0.2
    """
    out = to_xh(abundance, element, solar=solar) - to_xh(abundance_fe, "Fe", solar=solar)
    return _scalar(out)


def from_xfe(xfe, feh, element, *, solar=None):
    """A(X) = [X/Fe] + [Fe/H] + A(X)_sun, the inverse of :func:`to_xfe` given [Fe/H].

    Parameters
    ----------
    xfe : float or array-like
        [X/Fe].
    feh : float or array-like
        [Fe/H] of the same stars (``to_xh(A(Fe), "Fe")``).
    element : str or array-like of str
        Symbol(s) of X.
    solar : mapping, default=None
        Symbol -> solar A(X); None: Grevesse, Asplund & Sauval (2007).

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> from skstellar.science import from_xfe
    >>> round(from_xfe(0.2, -0.4, "Mg"), 2)
    7.33
    """
    out = from_xh(_values(xfe, "xfe") + _values(feh, "feh"), element, solar=solar)
    return _scalar(out)
