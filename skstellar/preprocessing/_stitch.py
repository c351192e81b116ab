"""SetupStitcher: the setups of each star side by side in one float32 array."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ..spectra import SpectralSet
from ..utils._persist import VersionStampMixin
from ..utils._sklearn import _fit_context, check_is_fitted
from ..utils._threads import for_each_chunk
from ._grid import row_chunks, wavelength_names
from ._input import as_spectral_set, check_setups

__all__ = ["SetupStitcher"]


class SetupStitcher(VersionStampMixin, TransformerMixin, BaseEstimator):
    """Concatenate the setups of each star into one 2-D float32 array.

    The order is fixed at ``fit``: ``setups`` if given, else the SpectralSet's own
    setup order (:attr:`SpectralSet.setups`). Every stitched setup must have one
    wavelength grid shared by all stars (put a :class:`Rebinner` first), and later
    batches must have exactly the fitted grids, so every column always means the same
    wavelength. Flux errors are not carried over.

    Parameters
    ----------
    setups : list of str, default=None
        The setups to stitch, in this order; others are left out. None takes all, in
        the SpectralSet's order.
    wavelength : array-like of shape (n_pixels,), default=None
        Wavelength grid (Angstrom) of a plain-array input, used for the feature names
        and :attr:`wavelength_`; None means the pixel index.
    copy : bool, default=True
        False returns, without copying, the array whose adjacent column blocks the
        input's setups already are, in the stitched order (as :class:`Rebinner` writes
        them): the output then shares memory with the input SpectralSet. Otherwise, and
        for plain-array input, a new array. :func:`giraffe_preprocessor` sets False, since
        a pipeline discards the rebinned set; it saves a copy of the output (7 % of the
        chain's time for 10 000 GIRAFFE stars) and its memory.

    Attributes
    ----------
    n_features_in_ : int
        Number of pixels (all setups) of the input seen during fit.
    setups_ : tuple of str
        The stitched setups, in output order.
    n_pixels_in_ : dict of str to int
        Pixels per stitched setup.
    wavelength_ : ndarray of shape (n_features_out,)
        Wavelength (Angstrom) of each output column, float64: plot a saliency map
        against it.
    setup_slices_ : dict of str to slice
        The output columns of each setup (the setup boundaries).

    See Also
    --------
    Rebinner : Puts every star of a setup on one shared grid.

    Notes
    -----
    With the GIRAFFE settings of :func:`giraffe_preprocessor` the output has
    4168 + 4501 = 8669 columns, the thesis' number: the :class:`Rebinner` takes the
    fewest bins centred on ``lo + k * step`` that cover each range, so HR10 (0.06 A,
    5350-5600 A) runs to a bin centred at 5600.02 A (the one at 5599.96 A ends at
    5599.99 A) and HR21 (0.1 A, 8480-8930 A) to 8930.0 A. Bins centred within the
    ranges only would give 8668, bins wholly inside them 8666. The Table 2 network
    has its 560 599 parameters for 8669 to 8672 input pixels, not 8668.

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.spectra import SpectralSet
    >>> from skstellar.preprocessing import SetupStitcher
    >>> s = SpectralSet.from_arrays({"HR10": ([5350.0, 5350.06], np.ones((3, 2))),
    ...                              "HR21": ([8480.0, 8480.1, 8480.2], np.zeros((3, 3)))})
    >>> st = SetupStitcher().fit(s)
    >>> st.transform(s).shape
    (3, 5)
    >>> st.get_feature_names_out().tolist()
    ['HR10_5350.00', 'HR10_5350.06', 'HR21_8480.0', 'HR21_8480.1', 'HR21_8480.2']
    """

    _parameter_constraints: dict = {
        "setups": [list, tuple, None],
        "wavelength": ["array-like", None],
        "copy": ["boolean"],
    }

    def __init__(self, *, setups=None, wavelength=None, copy=True):
        self.setups = setups
        self.wavelength = wavelength
        self.copy = copy

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fix the setup order and the wavelength of every output column.

        Parameters
        ----------
        X : SpectralSet or array-like of shape (n_spectra, n_pixels)
        y : None
            Ignored.

        Returns
        -------
        self : SetupStitcher
        """
        S, _ = as_spectral_set(self, X, reset=True)
        if self.setups is not None:
            order = tuple(self.setups)
            if len(set(order)) != len(order) or not order:
                raise ValueError(f"setups must name distinct setups, at least one; got {self.setups!r}.")
            missing = [s for s in order if s not in S.setups]
            if missing:
                raise ValueError(
                    f"setups names {', '.join(map(repr, missing))}, which X lacks (it has {S.setups})."
                )
            self.setups_ = order
            self.n_pixels_in_ = {s: S.n_pixels(s) for s in order}
        grids = []
        for setup in self.setups_:
            wave = S.wavelength(setup)
            if wave.ndim != 1:
                raise ValueError(
                    f"setup {setup!r} has a wavelength grid per star; stitched columns need one "
                    "grid shared by all stars. Put a Rebinner before the SetupStitcher."
                )
            grids.append(wave)
        self.wavelength_ = np.concatenate(grids)
        bounds = np.cumsum([0] + [g.size for g in grids])
        self.setup_slices_ = {
            s: slice(int(lo), int(hi)) for s, lo, hi in zip(self.setups_, bounds[:-1], bounds[1:])
        }
        return self

    def transform(self, X):
        """Stitch the setups of ``X`` into one array.

        Parameters
        ----------
        X : SpectralSet or array-like of shape (n_spectra, n_pixels)

        Returns
        -------
        ndarray of shape (n_spectra, n_features_out), float32
            A new array, or with ``copy=False`` possibly the one the input's fluxes are
            views of.
        """
        check_is_fitted(self)
        if isinstance(X, SpectralSet):
            check_setups(self, X, setups=self.setups_)
            S = X
        else:
            S, _ = as_spectral_set(self, X, reset=False)
        parts = []
        for setup, cols in self.setup_slices_.items():
            wave = S.wavelength(setup)
            fitted = self.wavelength_[cols]
            if wave.shape != fitted.shape or not np.allclose(wave, fitted, rtol=0, atol=1e-6):
                where = "a grid per star" if wave.ndim == 2 else f"{wave[0]:.4f}-{wave[-1]:.4f} A"
                raise ValueError(
                    f"setup {setup!r} has {where}, not the grid seen at fit "
                    f"({fitted[0]:.4f}-{fitted[-1]:.4f} A, {fitted.size} pixels). Resample it "
                    "with the fitted Rebinner of the same pipeline."
                )
            parts.append((cols, S.flux(setup)))
        if not self.copy and isinstance(X, SpectralSet):
            block = _array_of_blocks([flux for _, flux in parts], len(S), self.wavelength_.size)
            if block is not None:
                return block
        out = np.empty((len(S), self.wavelength_.size), dtype=np.float32)

        def copy(rows):  # a plain copy, but on all cores: it is memory-bound
            for cols, flux in parts:
                out[rows, cols] = flux[rows]

        for_each_chunk(copy, row_chunks(len(S), out.shape[1]))
        return out

    def get_feature_names_out(self, input_features=None):
        """One name per output column, ``"<setup>_<wavelength>"`` (e.g. ``"HR10_5350.06"``).

        Parameters
        ----------
        input_features : array-like of str, default=None
            Ignored apart from a length check (names come from the wavelengths).

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self)
        if input_features is not None and len(input_features) != self.n_features_in_:
            raise ValueError(
                f"input_features has {len(input_features)} names; expected {self.n_features_in_}."
            )
        return np.concatenate(
            [wavelength_names(s, self.wavelength_[cols]) for s, cols in self.setup_slices_.items()]
        )

    @classmethod
    def _get_test_params(cls):
        """Settings for the common estimator checks (the defaults are already cheap)."""
        return {}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _array_of_blocks(parts, n_rows, n_cols):
    """The C-contiguous float32 ``(n_rows, n_cols)`` array of which ``parts`` are the
    adjacent column blocks, in order and covering all its columns; else None."""
    base = parts[0].base
    if not (isinstance(base, np.ndarray) and base.dtype == np.float32 and base.flags.c_contiguous
            and base.shape == (n_rows, n_cols)):
        return None
    start = address = base.__array_interface__["data"][0]
    for part in parts:
        if (part.base is not base or part.strides != base.strides or part.shape[0] != n_rows
                or part.__array_interface__["data"][0] != address):
            return None
        address += part.shape[1] * base.itemsize
    return base if address - start == n_cols * base.itemsize else None
