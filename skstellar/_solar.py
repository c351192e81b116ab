"""Solar chemical composition: the one place the package takes it from.

``SOLAR_ABUNDANCES`` maps an element symbol to its solar abundance
A(X) = log10(N_X / N_H) + 12 from Grevesse, N., Asplund, M. & Sauval, A. J. 2007,
"The solar chemical composition", Space Science Reviews 130, 105 (Table 1), the
scale of the MARCS model atmospheres and of the Gaia-ESO survey. Photospheric
values are used; where the paper gives none (noble gases excepted, which are
indirect estimates), the meteoritic value of the same table is taken.

[X/H] = A(X)_star - A(X)_sun, and [X/Fe] = [X/H] - [Fe/H].
"""

__all__ = ["SOLAR_ABUNDANCES", "solar_abundance"]

SOLAR_ABUNDANCES = {
    "H": 12.00, "He": 10.93, "Li": 1.05, "Be": 1.38, "B": 2.70, "C": 8.39, "N": 7.78,
    "O": 8.66, "F": 4.56, "Ne": 7.84, "Na": 6.17, "Mg": 7.53, "Al": 6.37, "Si": 7.51,
    "P": 5.36, "S": 7.14, "Cl": 5.50, "Ar": 6.18, "K": 5.08, "Ca": 6.31, "Sc": 3.17,
    "Ti": 4.90, "V": 4.00, "Cr": 5.64, "Mn": 5.39, "Fe": 7.45, "Co": 4.92, "Ni": 6.23,
    "Cu": 4.21, "Zn": 4.60, "Ga": 2.88, "Ge": 3.58, "As": 2.29, "Se": 3.33, "Br": 2.56,
    "Kr": 3.28, "Rb": 2.60, "Sr": 2.92, "Y": 2.21, "Zr": 2.59, "Nb": 1.42, "Mo": 1.92,
    "Ru": 1.84, "Rh": 1.12, "Pd": 1.69, "Ag": 0.94, "Cd": 1.77, "In": 1.60, "Sn": 2.00,
    "Sb": 1.00, "Te": 2.19, "I": 1.51, "Xe": 2.27, "Cs": 1.07, "Ba": 2.17, "La": 1.13,
    "Ce": 1.70, "Pr": 0.58, "Nd": 1.45, "Sm": 1.00, "Eu": 0.52, "Gd": 1.11, "Tb": 0.28,
    "Dy": 1.14, "Ho": 0.51, "Er": 0.93, "Tm": 0.00, "Yb": 1.08, "Lu": 0.06, "Hf": 0.88,
    "Ta": -0.17, "W": 1.11, "Re": 0.23, "Os": 1.45, "Ir": 1.38, "Pt": 1.64, "Au": 1.01,
    "Hg": 1.13, "Tl": 0.90, "Pb": 2.00, "Bi": 0.65, "Th": 0.06, "U": -0.52,
}


def solar_abundance(element):
    """A(X) of the Sun for an element symbol (Grevesse, Asplund & Sauval 2007).

    Parameters
    ----------
    element : str
        Element symbol, e.g. ``"Mg"``.

    Returns
    -------
    float

    Examples
    --------
    >>> from skstellar._solar import solar_abundance
    >>> solar_abundance("Fe")
    7.45
    """
    try:
        return SOLAR_ABUNDANCES[element]
    except KeyError:
        raise KeyError(
            f"No solar abundance for element {element!r}; known: {', '.join(SOLAR_ABUNDANCES)}."
        ) from None
