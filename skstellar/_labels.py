"""The physical unit of each stellar label the package knows, by the name used throughout."""

#: Unit of each label (``"dex"`` for logarithmic abundances and log g in cgs).
LABEL_UNITS = {"teff": "K", "logg": "dex", "feh": "dex", "mgfe": "dex", "alfe": "dex", "ali": "dex",
               "vmic": "km / s"}
