"""The physical unit of each stellar label the package knows, by the name used throughout."""

#: Unit of each label (``"dex"`` for logarithmic abundances and log g in cgs).
LABEL_UNITS = {"teff": "K", "logg": "dex", "feh": "dex", "mgfe": "dex", "alfe": "dex", "ali": "dex",
               "vmic": "km / s"}

#: How each label is written in a table header or on a plot axis.
LABEL_TITLES = {"teff": "Teff", "logg": "log g", "feh": "[Fe/H]", "mgfe": "[Mg/Fe]", "alfe": "[Al/Fe]",
                "ali": "A(Li)", "vmic": "vmic"}
