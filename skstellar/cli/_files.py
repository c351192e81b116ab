"""Spectrum files for the commands: paths from patterns, one reader per format, an index by star.

A survey directory may hold a corrupt file or a star observed in one setup only; a command
must not stop for one of them. So the files are first indexed one by one (star id and
setup, or why the file cannot be read), and only files known good are then read together.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from skstellar.io._fitsfile import expand_paths

__all__ = ["expand_paths", "listing", "SpectrumReader", "index_files"]

_LISTED = 5  # ids or files named in a message before "and N more"


def listing(items, n=_LISTED) -> str:
    """The first ``n`` items, then how many more."""
    items = [str(i) for i in items]
    text = ", ".join(items[:n])
    return text + (f" and {len(items) - n} more" if len(items) > n else "")


@dataclass
class SpectrumReader:
    """Reads files of one format: ``"ges"`` (Gaia-ESO GIRAFFE), ``"galah"`` (GALAH, cameras matched
    by star) or ``"fits"`` (1-D, one setup)."""

    format: str = "ges"
    setup: str | None = None
    hdu: str | int = 0
    rv_keyword: str | None = None
    n_jobs: int | None = None

    @classmethod
    def from_args(cls, args, defaults=None):
        """From the command's options; ``defaults`` (a model's manifest entry) fills those left None."""
        defaults = defaults or {}

        def option(key, fallback):
            value = getattr(args, key, None)
            return value if value is not None else defaults.get(key, fallback)

        hdu = option("hdu", 0)
        hdu = int(hdu) if isinstance(hdu, str) and hdu.isdigit() else hdu
        reader = cls(format=option("format", "ges"), setup=option("setup", None), hdu=hdu,
                     rv_keyword=option("rv_keyword", None), n_jobs=getattr(args, "n_jobs", None))
        if reader.format == "fits" and not reader.setup:
            raise ValueError("--format fits needs --setup, the name of the setup the files hold (e.g. HR21).")
        return reader

    @property
    def has_rv(self) -> bool:
        """Whether the spectra read carry a radial velocity (``meta["rv"]``)."""
        return self.format in ("ges", "galah") or bool(self.rv_keyword)

    def settings(self) -> dict:
        return {"format": self.format, "setup": self.setup, "hdu": self.hdu, "rv_keyword": self.rv_keyword}

    def read(self, paths, n_jobs=None):
        """All ``paths`` as one SpectralSet (GES or GALAH files of one star matched by its id)."""
        from skstellar.io import read_fits_spectra, read_galah, read_ges_giraffe

        if self.format == "ges":
            return read_ges_giraffe(paths, n_jobs=n_jobs)
        if self.format == "galah":
            return read_galah(paths, n_jobs=n_jobs)
        keywords = {"rv": self.rv_keyword} if self.rv_keyword else None
        return read_fits_spectra(paths, self.setup, hdu=self.hdu, meta_keywords=keywords, n_jobs=n_jobs)


def _index_one(reader, path):
    """(id, setup, None) of one file, or (None, None, why it cannot be read)."""
    from astropy.utils.exceptions import AstropyWarning

    try:
        with warnings.catch_warnings():
            # astropy only warns of a truncated file, then hands out what it could read
            warnings.simplefilter("error", AstropyWarning)
            spectrum = reader.read([path])
    except Exception as exc:  # noqa: BLE001 -- any failure of one file becomes its row's status
        message = " ".join(str(exc).split()) or type(exc).__name__
        return None, None, message.removeprefix(f"{path}: ")
    return str(spectrum.ids[0]), spectrum.setups[0], None


@dataclass
class FileIndex:
    """Where each star's files are, in the order of the files, and the files that failed."""

    stars: dict = field(default_factory=dict)  # id -> {setup: path}
    bad: dict = field(default_factory=dict)  # path -> reason
    order: list = field(default_factory=list)  # ("star", id) or ("file", path), first appearance

    def missing(self, setups) -> dict:
        """``{id: [setups it lacks]}`` of the stars lacking one of ``setups``."""
        out = {}
        for star_id, files in self.stars.items():
            lacks = [s for s in setups if s not in files]
            if lacks:
                out[star_id] = lacks
        return out

    def files(self, ids, setups) -> list:
        return [self.stars[i][s] for i in ids for s in setups]


def index_files(reader: SpectrumReader, paths, *, progress=True) -> FileIndex:
    """Read every file once, alone, to learn its star and setup or why it cannot be read."""
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    jobs = (delayed(_index_one)(reader, p) for p in paths)
    n_jobs = reader.n_jobs if reader.n_jobs not in (None, 1) and len(paths) > 1 else None
    results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs) if n_jobs else (
        _index_one(reader, p) for p in paths)
    index = FileIndex()
    for path, (star_id, setup, reason) in zip(paths, tqdm(results, total=len(paths), desc="indexing files",
                                                          unit="file", disable=not progress)):
        if reason is None and setup in index.stars.get(star_id, {}):
            reason = f"star {star_id!r} in setup {setup!r} again (first in {index.stars[star_id][setup]})"
        if reason is not None:
            index.bad[path] = reason
            index.order.append(("file", path))
            continue
        if star_id not in index.stars:
            index.stars[star_id] = {}
            index.order.append(("star", star_id))
        index.stars[star_id][setup] = path
    return index
