"""Readers on mutated copies of the real files: a correct read or a ReadError naming the file.

Truncations, random bytes (mostly in the headers, where the readers look) and header
cards overwritten with absurd values. No other exception type, no hang.
"""

import signal

import numpy as np
import pytest
from astropy.io import fits

from skstellar.io import (
    ReadError,
    read_fits_spectra,
    read_ges_giraffe,
    read_predictions,
)
from skstellar.spectra import SpectralSet

# the keywords a reader or astropy relies on, and values that break them
KEYS = ["SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "XTENSION", "EXTNAME", "PCOUNT", "GCOUNT",
        "TFIELDS", "TFORM1", "TTYPE3", "CRVAL1", "CDELT1", "CD1_1", "CRPIX1", "CTYPE1", "CUNIT1",
        "SETUP", "DC-FLAG", "END"]
VALUES = ["'abc'", "-1", "0", "1E300", "99999999999", "T", "'   '", "NaN", "'WAVE-LOG'", "3.5"]


def header_spans(path):
    """(start, end) byte offsets of every header of the file."""
    with fits.open(path) as hdul:
        return [(h.fileinfo()["hdrLoc"], h.fileinfo()["datLoc"]) for h in hdul]


def mutate(raw, spans, rng):
    """One mutated copy of the bytes ``raw`` of a FITS file, and what was done."""
    kind = ["truncate", "bytes", "card", "value"][int(rng.integers(4))]
    data = bytearray(raw)
    if kind == "truncate":
        cut = int(rng.integers(0, len(raw)))
        return bytes(data[:cut]), f"truncate at {cut}"
    lo, hi = spans[int(rng.integers(len(spans)))]
    if kind == "bytes":
        if rng.random() < 0.2:
            lo, hi = 0, len(raw)
        n = int(rng.integers(1, 17))
        at = int(rng.integers(lo, max(lo + 1, hi - n)))
        data[at:at + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        return bytes(data), f"{n} random bytes at {at}"
    card = lo + 80 * int(rng.integers(0, max(1, (hi - lo) // 80)))
    key, value = KEYS[int(rng.integers(len(KEYS)))], VALUES[int(rng.integers(len(VALUES)))]
    if kind == "value":  # an existing card of that keyword, if any, gets the value
        found = bytes(data[lo:hi]).find(f"{key:<8}".encode())
        if found >= 0 and found % 80 == 0:
            card = lo + found
    text = f"{key:<8}= {value:>20}".ljust(80)[:80].encode("ascii")
    data[card:card + 80] = text
    return bytes(data), f"card {key} = {value} at {card}"


class Hang(BaseException):
    """A read that ran past its alarm; not an Exception, so no reader can wrap it."""


def _alarm(signum, frame):
    raise Hang


def run_case(read, path):
    """'read' for a correct read, 'error' for a ReadError naming the file; anything else raises."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    try:
        s = read(path)
    except ReadError as exc:
        assert str(path) in str(exc), exc
        return "error"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert isinstance(s, SpectralSet) and len(s) == 1
    return "read"


def readers(shared_data):
    ges = shared_data / "spectra" / "ges_giraffe_HR21_19235180+0048006.fits"
    galah = shared_data / "spectra" / "galah" / "2101150001010011.fits"
    return {
        "ges": (ges, lambda p: read_ges_giraffe(p)),
        "galah": (galah, lambda p: read_fits_spectra(
            p, "CCD1", hdu="normalized", error_hdu="relative_error", error_type="relative",
            meta_keywords={"snr": "SNR"})),
    }


@pytest.mark.parametrize("name, n_cases", [("ges", 200), ("galah", 120)])
def test_mutated_files_give_a_read_or_a_read_error(shared_data, tmp_path, name, n_cases):
    path, read = readers(shared_data)[name]
    raw = path.read_bytes()
    spans = header_spans(path)
    rng = np.random.default_rng(18)
    outcomes = {"read": 0, "error": 0}
    for k in range(n_cases):
        data, what = mutate(raw, spans, rng)
        case = tmp_path / f"case{k}.fits"
        case.write_bytes(data)
        try:
            outcomes[run_case(read, case)] += 1
        except (Hang, Exception) as exc:  # report which mutation broke it
            raise AssertionError(f"{name} case {k} ({what}): {type(exc).__name__}: {exc}") from exc
        case.unlink()
    assert outcomes["error"] >= n_cases // 5  # the mutations do bite


def test_read_predictions_on_junk_and_on_a_spectrum_file(shared_data, tmp_path):
    spectrum = shared_data / "spectra" / "ges_giraffe_HR21_19235180+0048006.fits"
    with pytest.raises(ReadError, match=r"ges_giraffe_HR21.*not a predictions table.*10 HDUs"):
        read_predictions(spectrum)
    junk = {"a.ecsv": "# %ECSV 1.0\n# ---\n# datatype: [oops\nid teff\n", "b.csv": "\x00\x01\x02,\n\"",
            "c.fits": "SIMPLE  =  nonsense", "d.ecsv": "", "e.csv": ""}
    for name, text in junk.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ReadError, match=rf"{name}"):
            read_predictions(tmp_path / name)
