"""Line strengths from stellar labels: a one-layer LTE atmosphere.

Every line is formed in one layer whose temperature is tied to Teff and whose
electron and gas pressures grow with log g. For each star and line this module gives
the intrinsic line-centre opacity relative to the continuum, ``X``, the intrinsic
Doppler width and the damping (Lorentzian) half width, from

* the line's log gf, excitation potential and wavelength,
* the element's abundance, A(X) = A(X)_sun + [Fe/H] (+ [Mg/Fe] for the alpha
  elements O, Ne, Mg, Si, S, Ca, Ti; + [Al/Fe] for Al; A(Li) for Li),
* Boltzmann excitation and Saha ionisation (stages I, II, III) at the layer's
  temperature and electron pressure,
* continuum opacity from H- (bound-free and free-free, proportional to the electron
  pressure) plus hydrogen bound-free from n = 3, which takes over in hot stars,
* radiative, van der Waals (Unsold's approximation, scaled by gas pressure) and, for
  hydrogen, Stark damping (scaled by electron pressure).

The atmosphere depends on [Fe/H] only (not on [Mg/Fe] or [Al/Fe]), so that changing
[Mg/Fe] changes the Mg (and alpha-element) lines and nothing else.
"""

import numpy as np

from .._solar import SOLAR_ABUNDANCES

__all__ = ["ATOMS", "ALPHA_ELEMENTS", "Atmosphere", "line_opacity"]

K_B_EV = 8.617333e-5  # Boltzmann constant, eV/K
C_KMS = 299792.458
AMU_KMS2 = 2 * 1.380649e-23 / 1.66053907e-27 / 1e6  # 2k/m_u in (km/s)^2 per K
HC_EV_A = 12398.42  # h c in eV Angstrom

ALPHA_ELEMENTS = ("O", "Ne", "Mg", "Si", "S", "Ca", "Ti")

# element: (atomic mass, first and second ionisation energy in eV, partition functions
# of stages I, II, III near 5000 K). The partition functions are held constant: their
# temperature dependence is small next to the Boltzmann and Saha factors.
ATOMS = {
    "H": (1.008, 13.598, 99.0, 2.0, 1.0, 1.0),
    "Li": (6.94, 5.392, 75.64, 2.1, 1.0, 2.0),
    "Be": (9.012, 9.323, 18.211, 1.0, 2.0, 1.0),
    "B": (10.81, 8.298, 25.155, 6.0, 1.0, 2.0),
    "C": (12.011, 11.260, 24.383, 9.3, 6.0, 1.0),
    "N": (14.007, 14.534, 29.601, 4.0, 9.0, 6.0),
    "O": (15.999, 13.618, 35.121, 8.7, 4.0, 9.0),
    "Na": (22.990, 5.139, 47.286, 2.0, 1.0, 6.0),
    "Mg": (24.305, 7.646, 15.035, 1.0, 2.0, 1.0),
    "Al": (26.982, 5.986, 18.829, 5.8, 1.0, 2.0),
    "Si": (28.085, 8.152, 16.346, 9.5, 5.6, 1.0),
    "P": (30.974, 10.487, 19.769, 4.5, 8.0, 6.0),
    "S": (32.06, 10.360, 23.338, 8.5, 4.0, 9.0),
    "K": (39.098, 4.341, 31.63, 2.1, 1.0, 6.0),
    "Ca": (40.078, 6.113, 11.872, 1.2, 2.2, 1.0),
    "Sc": (44.956, 6.561, 12.80, 10.0, 19.0, 10.0),
    "Ti": (47.867, 6.828, 13.58, 25.0, 50.0, 22.0),
    "V": (50.942, 6.746, 14.66, 35.0, 35.0, 25.0),
    "Cr": (51.996, 6.767, 16.486, 8.0, 7.0, 25.0),
    "Mn": (54.938, 7.434, 15.640, 6.0, 7.0, 10.0),
    "Fe": (55.845, 7.902, 16.199, 25.0, 42.0, 25.0),
    "Co": (58.933, 7.881, 17.084, 30.0, 25.0, 28.0),
    "Ni": (58.693, 7.640, 18.169, 30.0, 10.0, 21.0),
    "Cu": (63.546, 7.726, 20.292, 2.0, 1.0, 10.0),
    "Zn": (65.38, 9.394, 17.964, 1.0, 2.0, 1.0),
    "Rb": (85.468, 4.177, 27.29, 2.0, 1.0, 6.0),
    "Sr": (87.62, 5.695, 11.030, 1.0, 2.0, 1.0),
    "Y": (88.906, 6.217, 12.24, 10.0, 15.0, 10.0),
    "Zr": (91.224, 6.634, 13.13, 25.0, 40.0, 20.0),
    "Nb": (92.906, 6.759, 14.32, 40.0, 30.0, 20.0),
    "Mo": (95.95, 7.092, 16.16, 7.0, 7.0, 20.0),
    "Ru": (101.07, 7.360, 16.76, 25.0, 20.0, 20.0),
    "Ba": (137.33, 5.212, 10.004, 2.5, 4.2, 1.0),
    "La": (138.91, 5.577, 11.06, 30.0, 25.0, 15.0),
    "Ce": (140.12, 5.539, 10.85, 100.0, 150.0, 50.0),
    "Pr": (140.91, 5.473, 10.55, 50.0, 60.0, 40.0),
    "Nd": (144.24, 5.525, 10.73, 60.0, 80.0, 50.0),
    "Sm": (150.36, 5.644, 11.07, 40.0, 60.0, 40.0),
    "Eu": (151.96, 5.670, 11.24, 9.0, 12.0, 8.0),
    "Gd": (157.25, 6.150, 12.09, 30.0, 40.0, 30.0),
    "Dy": (162.50, 5.939, 11.67, 30.0, 35.0, 30.0),
}

# Calibration constants, fixed so that the Sun (5777 K, 4.44, 0.0, vmic 1.0 km/s)
# gives its observed line depths at GIRAFFE resolution (see make_giraffe_survey).
LAYER_TEFF_RATIO = 0.88  # line-forming layer temperature / Teff
LOG_PG_SUN = 5.0  # gas pressure of the layer, dyn/cm^2
LOG_DONORS = -4.3  # electron donors (Na, Mg, Al, Si, Ca, Fe ...) per H at solar metallicity
DONOR_CHI = 7.0  # their representative ionisation energy, eV
LOG_HBF = 11.4  # hydrogen n=3 bound-free opacity relative to H-
KAPPA_SLOPE = 1.0  # continuum opacity ~ lambda^1
LOG_LINE_SCALE = 13.31  # line/continuum opacity scale
LOG_GAMMA6 = -3.2  # van der Waals half width (A) of a line with Delta r^2 = 1 at solar pressure
LOG_GAMMA_STARK = -0.8  # Stark half width (A) of H alpha at solar electron pressure
GAMMA_RAD = 2.0e-4  # radiative half width, A
H_THETA_SCALE = 0.5  # Teff sensitivity of hydrogen line excitation relative to one layer
DMAX_TEFF_POWER = 2.5  # the source-function gradient falls steeply in hotter stars
DMAX_B = 10.0  # Milne-Eddington source-function gradient at 5500 A and solar temperature


class Atmosphere:
    """The line-forming layer of a batch of stars.

    Parameters
    ----------
    teff, logg, feh : ndarray of shape (n,)
    """

    def __init__(self, teff, logg, feh):
        teff = np.asarray(teff, dtype=np.float64)
        logg = np.asarray(logg, dtype=np.float64)
        feh = np.asarray(feh, dtype=np.float64)
        self.T = LAYER_TEFF_RATIO * teff
        self.theta = 5040.0 / self.T
        self.log_pg = LOG_PG_SUN + 0.64 * (logg - 4.44) - 0.25 * feh
        pg = 10.0**self.log_pg
        # Electrons from metals (dominant in cool stars) and from hydrogen (hot stars).
        donors = 10.0 ** (LOG_DONORS + feh) * _saha_ratio(self.T, DONOR_CHI, 1.0, 1.0)
        hydrogen = _saha_ratio(self.T, 13.598, 2.0, 1.0)
        self.log_pe = 0.5 * np.log10(pg * (donors + hydrogen))
        # Continuum opacity per H atom (arbitrary units): H- plus H bound-free (n = 3).
        hminus = self.log_pe + 2.5 * np.log10(self.theta) + 0.754 * self.theta
        hbf = LOG_HBF - 12.09 * self.theta
        self.log_kappa = np.logaddexp(hminus * np.log(10), hbf * np.log(10)) / np.log(10)
        self.log_pg_rel = self.log_pg - LOG_PG_SUN
        self.log_pe_rel = self.log_pe - _SUN_LOG_PE

    def stage_fraction(self, element, ion):
        """Fraction of the element in ionisation stage ``ion`` (1 = neutral), (n,)."""
        _, chi1, chi2, u1, u2, u3 = ATOMS[element]
        pe = 10.0**self.log_pe
        r1 = _saha_ratio(self.T, chi1, u1, u2) / pe
        r2 = _saha_ratio(self.T, chi2, u2, u3) / pe
        f1 = 1.0 / (1.0 + r1 * (1.0 + r2))
        return f1 if ion == 1 else f1 * r1

    @property
    def inv_dmax_b(self):
        """1 / b of Dmax = b / (1 + b), b = DMAX_B (T_sun / T)^2.5 (5500 A / lambda)^2, at 5500 A."""
        return (self.T / _SUN_T) ** DMAX_TEFF_POWER / DMAX_B

    def dmax(self, wavelength):
        """Depth of a fully saturated line (Milne-Eddington), shape (n, len(wavelength)).

        b is the source-function gradient in units of its surface value: it falls
        towards the red and in hotter stars, so lines there saturate shallower.
        """
        inv_b = np.multiply.outer(self.inv_dmax_b, (np.asarray(wavelength) / 5500.0) ** 2)
        return 1.0 / (1.0 + inv_b)


def _saha_ratio(T, chi, u_low, u_high):
    """N_{i+1} N_e / N_i expressed as an electron pressure (dyn/cm^2), Gray (2005) eq. 1.20."""
    return 0.6665 * (u_high / u_low) * T**2.5 * 10.0 ** (-5040.0 / T * chi)


_SUN_T = LAYER_TEFF_RATIO * 5777.0
_SUN_THETA = 5040.0 / _SUN_T
_SUN_LOG_PE = 0.0
_SUN_LOG_PE = float(Atmosphere(np.array([5777.0]), np.array([4.44]), np.array([0.0])).log_pe[0])


def abundances(elements, feh, mgfe, alfe, ali):
    """A(X) of each element for each star, shape (n, len(elements))."""
    feh = np.asarray(feh, dtype=np.float64)
    out = np.empty((feh.size, len(elements)))
    for j, el in enumerate(elements):
        if el == "Li":
            out[:, j] = ali
        elif el == "H":
            out[:, j] = 12.0
        else:
            a = SOLAR_ABUNDANCES[el] + feh
            if el in ALPHA_ELEMENTS:
                a = a + mgfe
            elif el == "Al":
                a = a + alfe
            out[:, j] = a
    return out


def damping_shape(lines):
    """Per-line van der Waals strength (Unsold): (Delta r^2)^0.4, with lambda^2 to go to A."""
    chi_ion = np.array(
        [ATOMS[e][1] if i == 1 else ATOMS[e][2] for e, i in zip(lines.element, lines.ion)]
    )
    e_up = lines.chi + HC_EV_A / lines.wave
    z2 = lines.ion.astype(float) ** 2
    n2_low = z2 * 13.6 / np.maximum(chi_ion - lines.chi, 0.5)
    n2_up = z2 * 13.6 / np.maximum(chi_ion - e_up, 0.5)
    dr2 = 2.5 * (n2_up**2 - n2_low**2) / z2
    return np.maximum(dr2, 1.0) ** 0.4 * (lines.wave / 6000.0) ** 2


def line_opacity(atm, lines, abund, elements, vmic, wing_idx=None):
    """Intrinsic line-centre opacity ratio, Doppler width and damping width.

    Everything that depends on the element only is computed per star and
    (element, stage) group, then gathered to the lines: the (star, line) work is a
    few float32 operations.

    Parameters
    ----------
    atm : Atmosphere of n stars
    lines : LineList of L lines
    abund : ndarray (n, len(elements))
        A(X) of each element for each star.
    elements : sequence of str
        The elements of ``abund``'s columns (they must cover ``lines.element``).
    vmic : ndarray (n,)
        Microturbulence, km/s.
    wing_idx : int array or None
        Lines for which to compute the damping width (default: all).

    Returns
    -------
    log_x : ndarray (n, L) float32, log10 of line-centre opacity / continuum opacity
    doppler : ndarray (n, L) float32, Doppler width lambda/c sqrt(2kT/m + vmic^2), A
    gamma : ndarray (n, len(wing_idx)), Lorentzian half width at half maximum, A
    """
    elements = list(elements)
    pairs = sorted(set(zip(lines.element.tolist(), lines.ion.tolist())))
    group = np.empty(lines.wave.size, dtype=np.intp)
    for k, (el, ion) in enumerate(pairs):
        group[(lines.element == el) & (lines.ion == ion)] = k
    el_of_group = [elements.index(el) for el, _ in pairs]
    vmic2 = np.asarray(vmic, dtype=np.float64) ** 2
    # Per star and group: abundance, stage fraction, partition function, velocity width.
    per_group = np.empty((atm.T.size, len(pairs)))
    log_v = np.empty((atm.T.size, len(pairs)))
    for k, (el, ion) in enumerate(pairs):
        mass, u = ATOMS[el][0], ATOMS[el][2 + ion]
        log_v[:, k] = 0.5 * np.log10(AMU_KMS2 * atm.T / mass + vmic2)
        per_group[:, k] = (
            abund[:, el_of_group[k]] - 12.0
            + np.log10(np.maximum(atm.stage_fraction(el, ion), 1e-300))
            - np.log10(u)
            - log_v[:, k]
        )
    per_group -= atm.log_kappa[:, None]
    # lambda^2 from the oscillator strength; H- continuum opacity rising to the red
    # (free-free) as lambda^1 across 5300-9000 A.
    per_line = (
        LOG_LINE_SCALE + lines.loggf + 2.0 * np.log10(lines.wave / 6000.0)
        - KAPPA_SLOPE * np.log10(lines.wave / 5500.0) - np.log10(lines.wave / C_KMS)
    )
    log_x = per_group.astype(np.float32)[:, group]
    log_x += per_line.astype(np.float32)[None, :]
    log_x -= np.multiply.outer(atm.theta.astype(np.float32), lines.chi.astype(np.float32))
    is_h = lines.element == "H"
    if is_h.any():
        # Hydrogen lines form over a deep range of layers, so their 10-12 eV Boltzmann
        # factor follows Teff less steeply than one layer's would (F stars show weak
        # Paschen lines, A stars strong ones): scale the excitation term about the Sun.
        d_theta = (atm.theta - _SUN_THETA) * (1.0 - H_THETA_SCALE)
        log_x[:, is_h] += np.multiply.outer(d_theta, lines.chi[is_h]).astype(np.float32)
    doppler = (10.0**log_v).astype(np.float32)[:, group]
    doppler *= (lines.wave / C_KMS).astype(np.float32)[None, :]
    w = np.arange(lines.wave.size) if wing_idx is None else np.asarray(wing_idx)
    t_rel = (atm.T / _SUN_T)[:, None]
    pressure = 10.0 ** atm.log_pg_rel[:, None] * t_rel**-0.7  # N_H v^0.6 relative to the Sun
    gamma = GAMMA_RAD + 10.0**LOG_GAMMA6 * lines.vdw[w][None, :] * pressure
    is_h = lines.element[w] == "H"
    if is_h.any():
        # Linear Stark effect: width grows with the electron density and the upper level.
        wh = w[is_h]
        stark = 10.0**LOG_GAMMA_STARK * (lines.wave[wh] / 6562.8) ** 2 * lines.stark[wh]
        gamma[:, is_h] = GAMMA_RAD + stark[None, :] * (10.0 ** atm.log_pe_rel[:, None]) ** 0.67
    return log_x, doppler, gamma
