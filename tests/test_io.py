"""skstellar.io on the real shared files, on modified copies of them, and on bad input."""

import shutil
import sys
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from numpy.testing import assert_allclose, assert_array_equal

from skstellar import SpectralSet
from skstellar.io import (
    ReadError,
    from_specutils,
    read_fits_spectra,
    read_galah,
    read_ges_giraffe,
    read_predictions,
    to_specutils,
    write_predictions,
)

GES_NAME = "ges_giraffe_HR21_19235180+0048006.fits"
GES_ID = "19235180+0048006"
SPECTRUM_HDUS = ("final_spectrum", "final_ivar", "normalised_spectrum", "normalised_ivar")


@pytest.fixture(scope="module")
def ges_path(shared_data):
    return shared_data / "spectra" / GES_NAME


@pytest.fixture(scope="module")
def galah_dir(shared_data):
    return shared_data / "spectra" / "galah"


def ges_copy(src, dst, *, cname=None, setup=None, crval=None, n_pixels=None, vel=None,
             evel=None, snr=None, ivar=None, drop_hdu=None, drop_keyword=None, header=None):
    """Write a modified copy of the real GES file: another star, setup or grid."""
    with fits.open(src, memmap=False) as hdul:
        for name in SPECTRUM_HDUS:
            h = hdul[name]
            if n_pixels is not None:
                h.data = h.data[:n_pixels].copy()
            if setup is not None:
                h.header["HIERARCH ESO INS FILT NAME"] = setup
            if crval is not None:
                h.header["CRVAL1"] = crval
            for key, value in (header or {}).items():
                h.header[key] = value
            if drop_keyword is not None:
                del h.header[drop_keyword]
        if ivar is not None:
            hdul["normalised_ivar"].data = np.asarray(ivar, dtype=">f4")
        row = hdul["velclass"].data
        for column, value in (("Cname", cname), ("VEL", vel), ("EVEL", evel), ("S_N", snr)):
            if value is not None:
                row[column][0] = value
        if drop_hdu is not None:
            del hdul[drop_hdu]
        hdul.writeto(dst)
    return dst


@pytest.fixture(scope="module")
def two_setups(ges_path, tmp_path_factory):
    """Stars A (the real one) and B, each in HR21 (real grid) and HR10 (5601 px from 5339 A)."""
    d = tmp_path_factory.mktemp("ges")
    hr10 = dict(setup="HR10", crval=5339.0, n_pixels=5601)
    files = {
        ("A", "HR21"): ges_copy(ges_path, d / "a21.fits"),
        ("A", "HR10"): ges_copy(ges_path, d / "a10.fits", vel=16.0, evel=0.2, snr=40.0, **hr10),
        ("B", "HR21"): ges_copy(ges_path, d / "b21.fits", cname="07000000-1000000",
                                vel=-50.0, evel=0.3, snr=20.0),
        ("B", "HR10"): ges_copy(ges_path, d / "b10.fits", cname="07000000-1000000",
                                vel=-52.0, evel=0.6, snr=25.0, **hr10),
    }
    return files


# -- read_ges_giraffe on the real file ---------------------------------------------------
def test_ges_real_file_values(ges_path):
    s = read_ges_giraffe(ges_path)
    assert s.setups == ("HR21",)
    assert len(s) == 1 and s.shape == (1, 10141)
    wave = s.wavelength("HR21")
    assert wave.shape == (10141,)  # one star: a shared grid
    assert wave[0] == 8475.0
    assert_allclose(np.diff(wave), 0.05, rtol=1e-9)
    assert_allclose(wave[-1], 8982.0, rtol=1e-12)
    assert s.ids.tolist() == [GES_ID]
    assert_allclose(s.meta["snr"], [58.6], atol=0.05)
    assert_allclose(s.meta["rv"], [15.64], atol=0.005)
    assert_allclose(s.meta["rv_HR21"], s.meta["rv"])
    assert s.meta["file_HR21"][0] == str(ges_path)
    assert s.meta.meta["spectrum"] == "normalised" and s.meta.meta["dropped"] == {}
    with fits.open(ges_path) as hdul:
        flux = hdul["normalised_spectrum"].data
        ivar = hdul["normalised_ivar"].data
        assert flux.dtype.byteorder == ">"  # the file is big-endian ...
        assert_array_equal(s.flux("HR21")[0], flux)
        assert_allclose(s.error("HR21")[0], 1.0 / np.sqrt(ivar.astype(np.float64)), rtol=1e-6)
    for arr in (s.flux("HR21"), s.error("HR21")):  # ... the set native float32
        assert arr.dtype == np.float32 and arr.dtype.isnative
    # a normalised spectrum: continuum near 1, Ca II triplet cores well below it
    assert 0.95 < np.median(s.flux("HR21")) < 1.05
    core = np.abs(wave - 8542.09 * (1 + 15.64 / 299792.458)).argmin()
    assert s.flux("HR21")[0, core] < 0.4


def test_ges_final_spectrum(ges_path):
    s = read_ges_giraffe([ges_path], spectrum="final")
    with fits.open(ges_path) as hdul:
        assert_array_equal(s.flux("HR21")[0], hdul[0].data)  # the primary HDU
        assert_allclose(s.error("HR21")[0], hdul["final_ivar"].data ** -0.5, rtol=1e-6)
    assert np.median(s.flux("HR21")) > 1000  # counts, not normalised
    assert s.meta.meta["spectrum"] == "final"


def test_ges_matches_specutils_reader(ges_path):
    from astropy.wcs import FITSFixedWarning
    from specutils import Spectrum

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)  # astropy.wcs on old ESO headers
        ref = Spectrum.read(ges_path, format="wcs1d-fits", hdu=2)
    s = read_ges_giraffe(ges_path)
    assert_allclose(s.wavelength("HR21"), ref.spectral_axis.to_value("Angstrom"), rtol=1e-12)
    assert_array_equal(s.flux("HR21")[0], ref.flux.value)


def test_ges_zero_and_negative_ivar_are_visible(ges_path, tmp_path):
    with fits.open(ges_path) as hdul:
        ivar = hdul["normalised_ivar"].data.astype(np.float32)
    ivar[10], ivar[20], ivar[30] = 0.0, -1.0, np.nan
    s = read_ges_giraffe(ges_copy(ges_path, tmp_path / "bad.fits", ivar=ivar))
    err = s.error("HR21")[0]
    assert np.isposinf(err[10])
    assert np.isnan(err[20]) and np.isnan(err[30])
    assert np.isfinite(np.delete(err, [10, 20, 30])).all()


# -- several files and setups ------------------------------------------------------------
def test_ges_two_setups_matched_by_id(two_setups, ges_path):
    f = two_setups
    # mixed order: stars keep the order of their first file, setups go by wavelength
    s = read_ges_giraffe([f["A", "HR21"], f["B", "HR10"], f["A", "HR10"], f["B", "HR21"]])
    assert s.setups == ("HR10", "HR21")
    assert s.ids.tolist() == [GES_ID, "07000000-1000000"]
    assert s.shape == (2, 5601 + 10141)
    w10 = s.wavelength("HR10")
    assert w10.shape == (5601,) and w10[0] == 5339.0
    assert_allclose(w10[-1], 5619.0, rtol=1e-12)
    assert s.wavelength("HR21").shape == (10141,)
    with fits.open(ges_path) as hdul:
        real = hdul["normalised_spectrum"].data
    assert_array_equal(s.flux("HR10")[1], real[:5601])
    assert_array_equal(s.flux("HR21")[0], real)
    m = s.meta
    assert_allclose(m["rv_HR10"], [16.0, -52.0])
    assert_allclose(m["snr_HR10"], [40.0, 25.0])
    assert_allclose(m["snr_HR21"][1], 20.0)
    assert_allclose(m["snr"], [40.0, 20.0])  # the lower S/N of the two setups
    # B: EVEL 0.6 (HR10) and 0.3 (HR21) -> weights 1:4
    assert_allclose(m["rv"][1], (-52.0 * 1 + -50.0 * 4) / 5)
    assert_allclose(m["e_rv"][1], 1 / np.sqrt(1 / 0.36 + 1 / 0.09))
    assert m["file_HR10"][1] == str(f["B", "HR10"])


def test_ges_parallel_read_is_identical(two_setups, tmp_path):
    files = list(two_setups.values())
    serial = read_ges_giraffe(files)
    parallel = read_ges_giraffe(files, n_jobs=2)
    assert parallel.setups == serial.setups and parallel.ids.tolist() == serial.ids.tolist()
    for setup in serial.setups:
        assert_array_equal(parallel.flux(setup), serial.flux(setup))
        assert_array_equal(parallel.error(setup), serial.error(setup))
    assert parallel.meta.pformat() == serial.meta.pformat()
    with pytest.raises(FileNotFoundError, match=r"gone\.fits: no such file"):
        read_ges_giraffe([*files, tmp_path / "gone.fits"], n_jobs=2)


def test_ges_per_star_grids(two_setups, ges_path, tmp_path):
    shifted = ges_copy(ges_path, tmp_path / "b21_shift.fits", cname="07000000-1000000",
                       crval=8475.5)
    s = read_ges_giraffe([two_setups["A", "HR21"], shifted])
    w = s.wavelength("HR21")
    assert w.shape == (2, 10141)
    assert w[0, 0] == 8475.0 and w[1, 0] == 8475.5


def test_ges_missing_setup_raises_or_drops(two_setups):
    f = two_setups
    files = [f["A", "HR21"], f["A", "HR10"], f["B", "HR21"]]
    with pytest.raises(ValueError,
                       match=r"1 of 2 stars lack a setup.*'07000000-1000000' \(no HR10\)"):
        read_ges_giraffe(files)
    s = read_ges_giraffe(files, on_bad="drop")
    assert s.ids.tolist() == [GES_ID] and s.setups == ("HR10", "HR21")
    assert s.meta.meta["dropped"] == {"07000000-1000000": ["HR10"]}
    assert s[0].meta.meta["dropped"] == {"07000000-1000000": ["HR10"]}  # survives indexing


def test_ges_drop_leaving_nothing(two_setups):
    with pytest.raises(ValueError, match="No star has a spectrum in every setup"):
        read_ges_giraffe([two_setups["A", "HR21"], two_setups["B", "HR10"]], on_bad="drop")


def test_ges_duplicate_star_names_both_files(two_setups, ges_path, tmp_path):
    again = ges_copy(ges_path, tmp_path / "again.fits")
    with pytest.raises(ValueError, match="appears twice in setup 'HR21'") as info:
        read_ges_giraffe([two_setups["A", "HR21"], again])
    assert str(two_setups["A", "HR21"]) in str(info.value) and str(again) in str(info.value)


def test_ges_pixel_counts_differ(two_setups, ges_path, tmp_path):
    short = ges_copy(ges_path, tmp_path / "short.fits", cname="07000000-1000000", n_pixels=9000)
    with pytest.raises(ValueError, match=r"setup 'HR21'.*9000 pixels in .*short\.fits"):
        read_ges_giraffe([two_setups["A", "HR21"], short])


# -- bad input, each naming the file ---------------------------------------------------
def test_ges_nonexistent_and_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.fits: no such file"):
        read_ges_giraffe(tmp_path / "nope.fits")
    with pytest.raises(ValueError, match="no files given"):
        read_ges_giraffe([])
    with pytest.raises(IsADirectoryError, match="is a directory"):
        read_ges_giraffe(tmp_path)


@pytest.mark.parametrize("kind", ["empty", "csv", "truncated", "bad SIMPLE card"])
def test_not_a_fits_file(tmp_path, ges_path, kind):
    content = {
        "empty": b"",
        "csv": b"id,teff\n1,5000\n",
        "truncated": ges_path.read_bytes()[:2000],  # cut inside the primary header
        "bad SIMPLE card": b"SIMPLE  =  T" + b" " * 5000,
    }[kind]
    path = tmp_path / "table.fits"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"table\.fits: not a readable FITS file"):
        read_ges_giraffe(path)
    with pytest.raises(ValueError, match=r"table\.fits: not a readable FITS file"):
        read_fits_spectra(path, "x")


def test_ges_file_cut_short(ges_path, tmp_path):
    path = tmp_path / "cut.fits"
    path.write_bytes(ges_path.read_bytes()[:300_000])  # inside the normalised_ivar data
    with pytest.raises(ValueError, match=r"cut\.fits: not a readable FITS file"):
        read_ges_giraffe(path)


def test_ges_missing_extension(ges_path, tmp_path):
    path = ges_copy(ges_path, tmp_path / "noivar.fits", drop_hdu="normalised_ivar")
    with pytest.raises(ValueError,
                       match=r"noivar\.fits: has no HDU 'normalised_ivar'; its HDUs are"):
        read_ges_giraffe(path)
    read_ges_giraffe(path, spectrum="final")  # the final spectrum is still complete
    path = ges_copy(ges_path, tmp_path / "novel.fits", drop_hdu="velclass")
    with pytest.raises(ValueError, match=r"novel\.fits: has no HDU 'velclass'"):
        read_ges_giraffe(path)


def test_ges_missing_setup_keyword(ges_path, tmp_path):
    path = tmp_path / "nosetup.fits"
    with fits.open(ges_path, memmap=False) as hdul:
        for h in hdul:
            h.header.remove("HIERARCH ESO INS FILT NAME", ignore_missing=True)
        hdul.writeto(path)
    with pytest.raises(ValueError,
                       match=r"nosetup\.fits: header .* no keyword 'ESO INS FILT NAME'"):
        read_ges_giraffe(path)


@pytest.mark.parametrize(
    "keyword, match",
    [("CRVAL1", "no keyword 'CRVAL1'"), ("CD1_1", "neither CD1_1 nor CDELT1")],
)
def test_ges_missing_wavelength_keyword(ges_path, tmp_path, keyword, match):
    path = ges_copy(ges_path, tmp_path / "nowcs.fits", drop_keyword=keyword)
    with pytest.raises(ValueError, match=rf"nowcs\.fits: .*{match}"):
        read_ges_giraffe(path)


def test_ges_missing_velclass_column(ges_path, tmp_path):
    path = tmp_path / "nosn.fits"
    with fits.open(ges_path, memmap=False) as hdul:
        table = Table(hdul["velclass"].data)
        table.remove_column("S_N")
        hdul["velclass"] = fits.BinTableHDU(table, name="velclass")
        hdul.writeto(path)
    with pytest.raises(ValueError, match=r"nosn\.fits: the 'velclass' table has no column 'S_N'"):
        read_ges_giraffe(path)


def test_ges_flux_and_ivar_lengths_differ(ges_path, tmp_path):
    with fits.open(ges_path) as hdul:
        ivar = hdul["normalised_ivar"].data[:-5]
    path = ges_copy(ges_path, tmp_path / "short_ivar.fits", ivar=ivar)
    with pytest.raises(ValueError, match=r"short_ivar\.fits: 'normalised_ivar' has 10136 pixels "
                                         r"but 'normalised_spectrum' has 10141"):
        read_ges_giraffe(path)


@pytest.mark.parametrize(
    "header, match",
    [
        ({"CRVAL1": "NaN"}, "CRVAL1 = 'NaN' is not a finite number"),
        ({"CRVAL1": 1e308, "CD1_1": 1e308}, "the wavelength axis is not finite"),
        ({"CD1_1": -0.05}, "wavelength step -0.05 is not positive"),
        ({"CTYPE1": "FREQ"}, "CTYPE1 = 'FREQ' is not a wavelength axis"),
        ({"CUNIT1": "furlong"}, "CUNIT1 = 'furlong' is not a wavelength unit"),
    ],
)
def test_ges_bad_wavelength_axis(ges_path, tmp_path, header, match):
    path = ges_copy(ges_path, tmp_path / "badwcs.fits", header=header)
    with pytest.raises(ValueError, match=rf"badwcs\.fits: HDU 'normalised_spectrum': {match}"):
        read_ges_giraffe(path)


def test_ges_bad_arguments(ges_path):
    with pytest.raises(ValueError, match="spectrum must be one of"):
        read_ges_giraffe(ges_path, spectrum="raw")
    with pytest.raises(ValueError, match="on_bad must be"):
        read_ges_giraffe(ges_path, on_bad="ignore")
    with pytest.raises(TypeError, match="paths must be a file path or an iterable"):
        read_ges_giraffe(42)


# -- read_fits_spectra -----------------------------------------------------------------
def galah_camera(galah_dir, camera):
    return sorted(galah_dir.glob(f"2*{camera}.fits"))


def test_fits_galah_camera(galah_dir):
    files = galah_camera(galah_dir, 1)
    assert len(files) == 4
    s = read_fits_spectra(files, "CCD1", hdu="normalized", error_hdu="relative_error",
                          error_type="relative", meta_keywords={"snr": "SNR", "rv": "RVCOM"})
    assert s.setups == ("CCD1",) and s.shape == (4, 4096)
    # ids default to the file names: sobject_id and camera digit
    assert s.ids.tolist() == ["2101150001010011", "2101150001010021", "2101150001010031",
                              "2101150001010041"]
    wave = s.wavelength("CCD1")
    assert wave.shape == (4, 4096)  # each fibre has its own wavelength solution
    for k, path in enumerate(files):
        with fits.open(path) as hdul:
            h = hdul["normalized"].header
            flux = hdul["normalized"].data
            rel = hdul["relative_error"].data
            assert flux.dtype == ">f8"
            assert wave[k, 0] == h["CRVAL1"]
            assert_allclose(np.diff(wave[k]), h["CDELT1"], rtol=1e-9)
            assert_allclose(s.flux("CCD1")[k], flux, rtol=1e-7)
            assert_allclose(s.error("CCD1")[k], rel * flux, rtol=1e-6)
            assert s.meta["snr"][k] == h["SNR"] and s.meta["rv"][k] == h["RVCOM"]
            assert s.meta["file"][k] == str(path)
    assert wave[0, 0] == 4714.06147168741
    assert_allclose(wave[0, 1] - wave[0, 0], 0.0459477822647381, rtol=1e-9)
    assert s.flux("CCD1").dtype == np.float32 and s.flux("CCD1").dtype.isnative
    assert s.error("CCD1").dtype == np.float32 and s.error("CCD1").dtype.isnative


def test_fits_galah_ids_from_header_and_cameras(galah_dir):
    ranges = []
    for camera in (1, 2, 3, 4):
        s = read_fits_spectra(galah_camera(galah_dir, camera), f"CCD{camera}", hdu="normalized",
                              id_keyword="GAIA_ID")
        assert s.ids.tolist() == ["3335074476514836608", "3335031144588572416",
                                  "3335042277143687936", "3335042281439724032"]
        assert s.error(f"CCD{camera}") is None
        ranges.append((s.wavelength(f"CCD{camera}").min(), s.wavelength(f"CCD{camera}").max()))
    # the four HERMES cameras: blue, green, red, infrared, not overlapping
    assert all(hi < lo for (_, hi), (lo, _) in zip(ranges, ranges[1:]))
    assert 7584 < ranges[3][0] < 7585 and 7880 < ranges[3][1] < 7890


def test_fits_matches_specutils_reader(galah_dir):
    from astropy.wcs import FITSFixedWarning
    from specutils import Spectrum

    path = galah_camera(galah_dir, 3)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)  # RADECSYS in the GALAH header
        ref = Spectrum.read(path, format="wcs1d-fits", hdu=1)
    s = read_fits_spectra(path, "CCD3", hdu="normalized")
    assert_allclose(s.wavelength("CCD3"), ref.spectral_axis.to_value("Angstrom"), rtol=1e-12)


def write_1d(path, data, hdu_name=None, **header):
    hdu = fits.PrimaryHDU(np.asarray(data, dtype=">f4"))
    hdu.header.update(header)
    hdus = [hdu]
    if hdu_name is not None:
        hdus.append(fits.ImageHDU(np.asarray(data, dtype=">f4"), header=hdu.header, name=hdu_name))
    fits.HDUList(hdus).writeto(path)
    return path


def test_fits_wcs_variants(tmp_path):
    data = np.arange(1.0, 11.0)
    lin = write_1d(tmp_path / "lin.fits", data, CRVAL1=600.0, CDELT1=0.01, CRPIX1=3.0, CUNIT1="nm")
    assert_allclose(read_fits_spectra(lin, "x").wavelength("x"), 6000.0 + 0.1 * (np.arange(10) - 2))
    # no CRPIX1: the FITS default 0, so pixel 1 is one step above CRVAL1
    nopix = write_1d(tmp_path / "nopix.fits", data, CRVAL1=5000.0, CD1_1=0.5)
    assert read_fits_spectra(nopix, "x").wavelength("x")[0] == 5000.5
    log10 = write_1d(tmp_path / "log10.fits", data, CRVAL1=3.7, CDELT1=1e-4, CRPIX1=1.0,
                     **{"DC-FLAG": 1})
    assert_allclose(read_fits_spectra(log10, "x").wavelength("x"),
                    10 ** (3.7 + 1e-4 * np.arange(10)))
    wlog = write_1d(tmp_path / "wlog.fits", data, CTYPE1="AWAV-LOG", CRVAL1=5000.0, CDELT1=0.1,
                    CRPIX1=1.0)
    w = read_fits_spectra(wlog, "x").wavelength("x")
    assert_allclose(w, 5000.0 * np.exp(0.1 * np.arange(10) / 5000.0))
    assert_allclose(np.diff(np.log(w)), 0.1 / 5000.0)


def test_fits_error_types(tmp_path):
    flux = np.array([2.0, -4.0, 1.0, 1.0])
    path = tmp_path / "e.fits"
    hdr = fits.Header({"CRVAL1": 5000.0, "CDELT1": 1.0, "CRPIX1": 1.0})
    fits.HDUList([
        fits.PrimaryHDU(flux.astype(">f8"), header=hdr),
        fits.ImageHDU(np.array([0.1, 0.1, 0.0, -1.0], dtype=">f8"), name="aux"),
    ]).writeto(path)
    err = {t: read_fits_spectra(path, "x", error_hdu="aux", error_type=t).error("x")[0]
           for t in ("sigma", "relative", "variance", "ivar")}
    assert_allclose(err["sigma"], [0.1, 0.1, 0.0, -1.0])
    assert_allclose(err["relative"], [0.2, 0.4, 0.0, -1.0])
    assert_allclose(err["variance"][:3], np.sqrt([0.1, 0.1, 0.0])) and np.isnan(err["variance"][3])
    assert_allclose(err["ivar"][:2], 1 / np.sqrt(0.1), rtol=1e-6)
    assert np.isposinf(err["ivar"][2]) and np.isnan(err["ivar"][3])
    with pytest.raises(ValueError, match="error_type must be one of"):
        read_fits_spectra(path, "x", error_hdu="aux", error_type="std")


def test_fits_bad_input(tmp_path, galah_dir):
    files = galah_camera(galah_dir, 2)
    with pytest.raises(ValueError, match=r"2101150001010012\.fits: has no HDU 'normalised'; "
                                         r"its HDUs are 0: 'PRIMARY', 1: 'normalized', "
                                         r"2: 'relative_error'"):
        read_fits_spectra(files, "CCD2", hdu="normalised")
    with pytest.raises(ValueError, match=r"2101150001010012\.fits: .* no keyword 'SN_RATIO'"):
        read_fits_spectra(files, "CCD2", hdu="normalized", meta_keywords={"snr": "SN_RATIO"})
    with pytest.raises(ValueError, match="ids has 2 entries but 4 files"):
        read_fits_spectra(files, "CCD2", ids=["a", "b"])
    with pytest.raises(ValueError, match=r"Star 'a' appears twice in setup 'CCD2'"):
        read_fits_spectra(files, "CCD2", ids=["a", "b", "c", "a"])
    with pytest.raises(ValueError, match="ids or id_keyword, not both"):
        read_fits_spectra(files, "CCD2", ids=list("abcd"), id_keyword="GAIA_ID")
    with pytest.raises(ValueError, match="no files given"):
        read_fits_spectra([], "CCD2")
    with pytest.raises(FileNotFoundError, match="missing.fits: no such file"):
        read_fits_spectra([files[0], tmp_path / "missing.fits"], "CCD2")
    with pytest.raises(ValueError, match="may not fill the column 'id'"):
        read_fits_spectra(files, "CCD2", meta_keywords={"id": "GAIA_ID"})
    # a setup needs one pixel count: a 100-pixel file among 4096-pixel ones is refused
    short = write_1d(tmp_path / "short.fits", np.ones(100), CRVAL1=5650.0, CDELT1=0.05)
    with pytest.raises(ValueError, match=r"setup 'CCD2': the files have different numbers of "
                                         r"pixels \(100 pixels in .*short\.fits, 4096 pixels in "
                                         r".*12\.fits\)"):
        read_fits_spectra([files[0], short], "CCD2")


def test_fits_flux_and_error_lengths_differ(tmp_path):
    path = tmp_path / "mismatch.fits"
    hdr = fits.Header({"CRVAL1": 5000.0, "CDELT1": 1.0})
    fits.HDUList([fits.PrimaryHDU(np.ones(10), header=hdr),
                  fits.ImageHDU(np.ones(8), name="err")]).writeto(path)
    with pytest.raises(ValueError, match=r"mismatch\.fits: error HDU 'err' has 8 pixels but flux "
                                         r"HDU 0 has 10"):
        read_fits_spectra(path, "x", error_hdu="err")


def test_fits_wavelength_hdu(tmp_path):
    wave = np.geomspace(5000.0, 5100.0, 10)

    def write(name, w):
        path = tmp_path / name
        fits.HDUList([fits.PrimaryHDU(np.arange(10.0)),
                      fits.ImageHDU(np.asarray(w, dtype=">f8"), name="wave")]).writeto(path)
        return path

    s = read_fits_spectra(write("ok.fits", wave), "x", wavelength_hdu="wave")
    assert_array_equal(s.wavelength("x"), wave)  # no CRVAL1 needed
    with pytest.raises(ValueError, match=r"short\.fits: wavelength HDU 'wave' has 9 pixels but "
                                         r"flux HDU 0 has 10"):
        read_fits_spectra(write("short.fits", wave[:9]), "x", wavelength_hdu="wave")
    bad = wave.copy()
    bad[4] = np.nan
    with pytest.raises(ValueError, match=r"nan\.fits: wavelength HDU 'wave': wavelength is not "
                                         r"finite \(nan\) at pixel 4"):
        read_fits_spectra(write("nan.fits", bad), "x", wavelength_hdu="wave")
    bad[4] = np.inf
    with pytest.raises(ValueError, match=r"not finite \(inf\) at pixel 4"):
        read_fits_spectra(write("inf.fits", bad), "x", wavelength_hdu="wave")
    with pytest.raises(ValueError, match=r"down\.fits: wavelength HDU 'wave': wavelength is not "
                                         r"strictly increasing at pixel 1"):
        read_fits_spectra(write("down.fits", wave[::-1]), "x", wavelength_hdu="wave")


def test_fits_not_a_spectrum(tmp_path, galah_dir):
    table = tmp_path / "table.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(Table({"a": [1, 2]}))]).writeto(table)
    with pytest.raises(ValueError, match=r"table\.fits: HDU 0 holds no data"):
        read_fits_spectra(table, "x")
    with pytest.raises(ValueError, match=r"table\.fits: HDU 1 is not a 1-D spectrum"):
        read_fits_spectra(table, "x", hdu=1)
    empty = write_1d(tmp_path / "empty.fits", np.ones(0), CRVAL1=5000.0, CDELT1=1.0)
    with pytest.raises(ValueError, match=r"empty\.fits: HDU 0 holds no data"):
        read_fits_spectra(empty, "x")
    image = write_1d(tmp_path / "image.fits", np.ones((3, 5)), CRVAL1=5000.0, CDELT1=1.0)
    with pytest.raises(ValueError, match=r"image\.fits: HDU 0 is not a 1-D spectrum"):
        read_fits_spectra(image, "x")


# -- read_galah: the four HERMES cameras matched by sobject_id ----------------------------
GALAH_IDS = ["210115000101001", "210115000101002", "210115000101003", "210115000101004"]


def galah_copy(galah_dir, dst, skip=()):
    """The 16 real GALAH files copied into ``dst`` (less the names in ``skip``)."""
    dst.mkdir(exist_ok=True)
    for path in galah_camera(galah_dir, ""):
        if path.name not in skip:
            shutil.copy(path, dst / path.name)
    return dst


def test_galah_four_stars_four_cameras_equal_read_fits_spectra(galah_dir):
    s = read_galah(galah_dir)  # the folder's summary table is not a spectrum: left out
    assert s.setups == ("CCD1", "CCD2", "CCD3", "CCD4") and s.ids.tolist() == GALAH_IDS
    assert s.meta.meta == {"spectrum": "normalized", "dropped": {}}
    snr = []
    for k, setup in enumerate(s.setups, start=1):
        ref = read_fits_spectra(galah_camera(galah_dir, k), setup, hdu="normalized",
                                error_hdu="relative_error", error_type="relative",
                                meta_keywords={"snr": "SNR", "rv": "RVCOM", "gaia_id": "GAIA_ID"})
        assert s.wavelength(setup).shape == (4, 4096)  # each fibre has its own wavelength solution
        for part in ("wavelength", "flux", "error"):
            assert_array_equal(getattr(s, part)(setup), getattr(ref, part)(setup))
        assert_array_equal(s.meta[f"snr_{setup}"], ref.meta["snr"])
        assert s.meta[f"file_{setup}"].tolist() == ref.meta["file"].tolist()
        assert s.meta["gaia_id"].tolist() == ref.meta["gaia_id"].tolist()
        if k == 1:  # RVCOM, one velocity copied into each camera's header: the first camera's
            assert_array_equal(s.meta["rv"], ref.meta["rv"])
        snr.append(ref.meta["snr"])
    assert_array_equal(s.meta["snr"], np.min(snr, axis=0))
    assert s.meta["gaia_id"][0] == "3335074476514836608" and s.meta["rv"][0] == -18.6838282380172
    assert s.meta["e_rv"][0] == 0.1172663683550732
    # a glob in another order gives the stars in the order of their first file
    again = read_galah([str(galah_dir / "2*4.fits"), str(galah_dir / "2*[123].fits")], errors=False)
    assert again.ids.tolist() == GALAH_IDS and again.error("CCD1") is None
    assert_array_equal(again.flux("CCD2"), s.flux("CCD2"))
    raw = read_galah(galah_camera(galah_dir, 3)[:1], spectrum="unnormalized")
    with fits.open(galah_camera(galah_dir, 3)[0]) as hdul:
        assert_allclose(raw.flux("CCD3")[0], hdul[0].data, rtol=1e-7)
        assert_allclose(raw.error("CCD3")[0], hdul["relative_error"].data * np.abs(hdul[0].data),
                        rtol=1e-6)


def test_galah_missing_camera_raise_drop_flag(galah_dir, tmp_path):
    folder = galah_copy(galah_dir, tmp_path / "galah", skip={"2101150001010023.fits"})
    with pytest.raises(ValueError, match=r"1 of 4 stars lack a setup.*'210115000101002' \(no CCD3\)"):
        read_galah(folder)
    s = read_galah(folder, on_bad="drop")
    assert s.ids.tolist() == [GALAH_IDS[0]] + GALAH_IDS[2:] and len(s.setups) == 4
    assert s.meta.meta["dropped"] == {"210115000101002": ["CCD3"]}
    s = read_galah(folder, on_bad="flag")
    assert s.ids.tolist() == GALAH_IDS and s.meta.meta["dropped"] == {}
    assert np.isnan(s.flux("CCD3")[1]).all() and np.isnan(s.error("CCD3")[1]).all()
    assert np.isfinite(s.flux("CCD3")[[0, 2, 3]]).all() and np.isfinite(s.flux("CCD2")).all()
    assert s.meta["status_flags_CCD3"].tolist() == [0, 2048, 0, 0]
    assert "status_flags_CCD2" not in s.meta.colnames
    assert s.meta["file_CCD3"][1] == "" and np.isnan(s.meta["snr_CCD3"][1])
    assert s.meta["rv"][1] == 31.9012088012013 and s.meta["gaia_id"][1] == "3335031144588572416"


def test_galah_bad_files_name_the_file(galah_dir, tmp_path):
    src = galah_dir / "2101150001010011.fits"
    cut = tmp_path / "cut" / src.name
    cut.parent.mkdir()
    cut.write_bytes(src.read_bytes()[:130_000])  # inside the relative_error data
    with pytest.raises(ReadError, match=rf"{cut}: not a readable FITS file"):
        read_galah([galah_dir / "2101150001010012.fits", cut])
    # the same star and camera twice: both files named
    with pytest.raises(ValueError, match="appears twice in setup 'CCD1'") as info:
        read_galah([src, shutil.copy(src, tmp_path / src.name)])
    assert str(src) in str(info.value) and str(tmp_path / src.name) in str(info.value)
    # a renamed file: its header's camera disagrees with the digit of its name
    renamed = shutil.copy(src, tmp_path / "2101150001010013.fits")
    with pytest.raises(ReadError, match=r"2101150001010013\.fits: the file name says camera 3 but "
                                        r"header keyword SPECTID = 'BL' says camera 1"):
        read_galah(renamed)
    with pytest.raises(ReadError, match=r"star\.fits: a GALAH file is named <sobject_id><camera 1-4>"):
        read_galah(shutil.copy(src, tmp_path / "star.fits"))
    with fits.open(src) as hdul:
        for hdu in hdul:
            hdu.header["SPECTID"] = "XX"
        hdul.writeto(tmp_path / "2101150001010044.fits")
    with pytest.raises(ReadError, match=r"SPECTID = 'XX' is not a HERMES camera"):
        read_galah(tmp_path / "2101150001010044.fits")
    # cameras of one sobject_id naming different Gaia sources: files of two stars mixed up
    other = tmp_path / "other" / "2101150001010012.fits"
    other.parent.mkdir()
    shutil.copy(galah_dir / "2101150001010022.fits", other)
    with pytest.raises(ValueError, match=r"Star '210115000101001': its cameras name different GAIA_ID: "
                                         r"3335074476514836608 in .*0011\.fits, 3335031144588572416 in .*0012"):
        read_galah([src, other])
    with pytest.raises(FileNotFoundError, match="no file matches this pattern and is a GALAH spectrum"):
        read_galah(str(galah_dir / "*summary*"))
    with pytest.raises(ValueError, match="spectrum must be one of"):
        read_galah(src, spectrum="normalised")
    with pytest.raises(ValueError, match="on_bad must be"):
        read_galah(src, on_bad="skip")


def test_galah_missing_header_values(galah_dir, tmp_path):
    src = galah_dir / "2101150001010021.fits"
    with fits.open(src) as hdul:
        for hdu in hdul:
            hdu.header["RVCOM"] = "None"  # how GALAH writes an unknown value
            hdu.header["GAIA_ID"] = "None"
            del hdu.header["SPECTID"], hdu.header["E_RVCOM"]
        hdul.writeto(tmp_path / src.name)
    s = read_galah(tmp_path / src.name)  # camera from the file name alone
    assert s.setups == ("CCD1",) and s.ids.tolist() == ["210115000101002"]
    assert np.isnan(s.meta["rv"][0]) and np.isnan(s.meta["e_rv"][0]) and s.meta["gaia_id"][0] == ""
    # another camera of the star still knows the velocity and the Gaia id
    s = read_galah([tmp_path / src.name, galah_dir / "2101150001010022.fits"])
    assert s.meta["rv"][0] == 31.90120615590563 and s.meta["gaia_id"][0] == "3335031144588572416"


# -- specutils -------------------------------------------------------------------------
def test_to_specutils_real_spectrum(ges_path):
    import astropy.units as u
    from astropy.nddata import StdDevUncertainty

    s = read_ges_giraffe(ges_path)
    spec = to_specutils(s, "HR21", index=0)
    assert spec.flux.shape == (10141,)
    assert_allclose(spec.spectral_axis.to_value(u.AA), s.wavelength("HR21"))
    assert_array_equal(spec.flux.value, s.flux("HR21")[0])
    assert isinstance(spec.uncertainty, StdDevUncertainty)
    assert_array_equal(spec.uncertainty.array, s.error("HR21")[0])
    assert spec.meta == {"setup": "HR21", "id": GES_ID}
    back = from_specutils(spec, "HR21")
    assert back.ids.tolist() == [GES_ID]
    assert_array_equal(back.wavelength("HR21"), s.wavelength("HR21"))
    assert_array_equal(back.flux("HR21"), s.flux("HR21"))
    assert_array_equal(back.error("HR21"), s.error("HR21"))


def test_specutils_round_trip_many_stars(rng):
    wave = np.linspace(6000.0, 6010.0, 101)
    flux = rng.normal(1.0, 0.02, (5, 101))
    s = SpectralSet.from_arrays({"red": (wave, flux, np.full_like(flux, 0.02))},
                                meta={"id": list("abcde")})
    spec = to_specutils(s, "red", index=[1, 3])
    assert spec.flux.shape == (2, 101) and spec.meta["id"] == ["b", "d"]
    back = from_specutils(spec, "red")
    assert back.ids.tolist() == ["b", "d"]
    assert_array_equal(back.flux("red"), s.flux("red")[[1, 3]])
    assert_array_equal(back.wavelength("red"), wave)
    with pytest.raises(KeyError, match="No setup 'blue'"):
        to_specutils(s, "blue")


def test_specutils_per_star_grids(rng):
    wave = 5000.0 + np.arange(50) * 0.1 + rng.uniform(0, 0.05, (3, 1))
    s = SpectralSet.from_arrays({"x": (wave, np.ones((3, 50)))})
    with pytest.raises(ValueError, match="per-star wavelength grids, but a Spectrum has one"):
        to_specutils(s, "x")
    specs = [to_specutils(s, "x", index=i) for i in range(3)]
    assert_allclose(specs[2].spectral_axis.value, wave[2])
    back = from_specutils(specs, "x")
    assert back.wavelength("x").shape == (3, 50)
    assert_array_equal(back.wavelength("x"), wave)
    assert back.ids.tolist() == ["0", "1", "2"]


def test_from_specutils_units_uncertainties_and_mask():
    import astropy.units as u
    from astropy.nddata import InverseVariance, VarianceUncertainty
    from specutils import Spectrum

    freq = np.linspace(5e14, 5.1e14, 20) * u.Hz  # increasing frequency: decreasing wavelength
    flux = np.arange(1.0, 21.0) * u.Unit("erg / (s cm2 AA)")
    var = np.full(20, 4.0)
    mask = np.zeros(20, bool)
    mask[0] = True
    spec = Spectrum(flux=flux, spectral_axis=freq, uncertainty=VarianceUncertainty(var), mask=mask)
    s = from_specutils(spec, "x")
    w = s.wavelength("x")
    assert np.all(np.diff(w) > 0)
    assert_allclose(w[-1], 2.99792458e18 / 5e14)  # Angstrom
    assert_allclose(s.flux("x")[0, :3], [20.0, 19.0, 18.0])
    assert np.isnan(s.flux("x")[0, -1])  # the masked first pixel, now last
    assert_allclose(s.error("x"), 2.0)
    assert u.Unit(s.meta.meta["flux_unit"]) == u.Unit("erg / (s cm2 AA)")
    assert to_specutils(s, "x", index=0).flux.unit == u.Unit("erg / (s cm2 AA)")
    ivar = Spectrum(flux=flux, spectral_axis=np.arange(20.0) * u.AA + 4000 * u.AA,
                    uncertainty=InverseVariance(np.r_[0.0, np.full(19, 0.25)]))
    err = from_specutils(ivar, "x").error("x")[0]
    assert np.isposinf(err[0])
    assert_allclose(err[1:], 2.0)


def test_from_specutils_bad_input():
    import astropy.units as u
    from astropy.nddata import StdDevUncertainty
    from specutils import Spectrum

    ax = np.arange(10.0) * u.AA + 5000 * u.AA
    a = Spectrum(flux=np.ones(10) * u.Jy, spectral_axis=ax,
                 uncertainty=StdDevUncertainty(np.ones(10)))
    b = Spectrum(flux=np.ones(10) * u.Jy, spectral_axis=ax)
    c = Spectrum(flux=np.ones(12) * u.Jy, spectral_axis=np.arange(12.0) * u.AA + 5000 * u.AA)
    d = Spectrum(flux=np.ones(10) * u.m, spectral_axis=ax)
    with pytest.raises(ValueError, match="spectrum 1 has no uncertainty but spectrum 0 has one"):
        from_specutils([a, b], "x")
    with pytest.raises(ValueError, match=r"different lengths \[10, 12\]"):
        from_specutils([b, c], "x")
    with pytest.raises(ValueError, match="spectrum 1: flux unit m does not convert to Jy"):
        from_specutils([b, d], "x")
    with pytest.raises(ValueError, match="no spectra given"):
        from_specutils([], "x")
    with pytest.raises(TypeError, match="spectrum 1 is a ndarray, not a specutils Spectrum"):
        from_specutils([b, np.ones(10)], "x")


def test_specutils_absent(monkeypatch):
    s = SpectralSet.from_arrays({"x": (np.arange(5.0) + 5000, np.ones(5))})
    monkeypatch.setitem(sys.modules, "specutils", None)  # as if not installed
    with pytest.raises(ImportError, match="needs the optional package specutils.*pip install"):
        to_specutils(s, "x")
    with pytest.raises(ImportError, match="needs the optional package specutils"):
        from_specutils([], "x")


# -- write_predictions -----------------------------------------------------------------
PRED_IDS = np.array(["0012", "19235180+0048006", "3335074476514836608"])
PRED_Y = np.array([[4812.5, 2.41, -0.12], [5650.0, 4.38, 0.05], [6100.25, 4.1, -1.3]])
PRED_FLAGS = {"unlike_training": np.array([False, True, False])}


@pytest.mark.parametrize("suffix", [".fits", ".ecsv", ".csv"])
def test_write_predictions_round_trip(tmp_path, suffix):
    path = tmp_path / f"labels{suffix}"
    y_std = PRED_Y * 0.01
    names = ["teff", "logg", "feh"]
    written = write_predictions((PRED_IDS, PRED_Y, y_std, names, PRED_FLAGS), path)
    assert written.colnames == ["id", "teff", "e_teff", "logg", "e_logg", "feh", "e_feh",
                                "unlike_training"]
    back = read_predictions(path)
    assert back.colnames == written.colnames
    assert back["id"].tolist() == PRED_IDS.tolist()  # leading zeros and long numbers kept
    for k, name in enumerate(["teff", "logg", "feh"]):
        assert_array_equal(back[name], PRED_Y[:, k])
        assert_array_equal(back[f"e_{name}"], y_std[:, k])
    assert back["unlike_training"].dtype == bool
    assert back["unlike_training"].tolist() == [False, True, False]
    with pytest.raises(FileExistsError, match=f"labels\\{suffix} exists; pass overwrite=True"):
        write_predictions((PRED_IDS, PRED_Y, None, ["teff", "logg", "feh"]), path)
    write_predictions((PRED_IDS, PRED_Y[:, 0], None, ["teff"]), path, overwrite=True)
    assert read_predictions(path).colnames == ["id", "teff"]


def test_write_predictions_table_and_meta(tmp_path):
    table = Table({"id": PRED_IDS, "[Fe/H]": PRED_Y[:, 2], "e_[Fe/H]": PRED_Y[:, 2] * 0.1})
    table.meta["dropped"] = {"07000000-1000000": ["HR10"]}
    write_predictions(table, tmp_path / "t.ecsv")
    back = read_predictions(tmp_path / "t.ecsv")
    assert back.meta["dropped"] == {"07000000-1000000": ["HR10"]}
    assert_array_equal(back["[Fe/H]"], PRED_Y[:, 2])
    fits_table = Table({"id": PRED_IDS, "feh": PRED_Y[:, 2]}, meta=table.meta)
    write_predictions(fits_table, tmp_path / "t.fits.gz")
    back = read_predictions(tmp_path / "t.fits.gz")
    assert back.meta["DROPPED"] == '{"07000000-1000000": ["HR10"]}'  # JSON in the header
    assert fits_table.meta["dropped"] == {"07000000-1000000": ["HR10"]}  # caller's table intact
    write_predictions({"id": ["a"], "teff": [5000.0]}, tmp_path / "d.txt", format="csv")
    assert read_predictions(tmp_path / "d.txt", format="csv")["teff"][0] == 5000.0


def test_write_predictions_bad_input(tmp_path):
    names = ["teff", "logg", "feh"]
    with pytest.raises(ValueError, match=r"labels\.txt: cannot tell the format from the suffix"):
        write_predictions((PRED_IDS, PRED_Y, None, names), tmp_path / "labels.txt")
    with pytest.raises(ValueError, match="format must be one of"):
        write_predictions((PRED_IDS, PRED_Y, None, names), tmp_path / "l.csv", format="xlsx")
    with pytest.raises(ValueError, match=r"y must have shape \(2,\) or \(2, n_labels\)"):
        write_predictions((PRED_IDS[:2], PRED_Y, None, names), tmp_path / "l.csv")
    with pytest.raises(ValueError, match=r"y_std has shape \(3, 2\) but y has \(3, 3\)"):
        write_predictions((PRED_IDS, PRED_Y, PRED_Y[:, :2], names), tmp_path / "l.csv")
    with pytest.raises(ValueError, match=r"2 label_names \['teff', 'logg'\] for 3 columns"):
        write_predictions((PRED_IDS, PRED_Y, None, names[:2]), tmp_path / "l.csv")
    with pytest.raises(ValueError, match=r"label column 'teff' would repeat"):
        write_predictions((PRED_IDS, PRED_Y, None, ["teff", "teff", "feh"]), tmp_path / "l.csv")
    with pytest.raises(ValueError, match=r"flag 'bad' has shape \(2,\); expected \(3,\)"):
        write_predictions((PRED_IDS, PRED_Y, None, names, {"bad": [True, False]}),
                          tmp_path / "l.csv")
    with pytest.raises(TypeError, match="needs an astropy Table, a dict of columns, or a tuple"):
        write_predictions(PRED_Y, tmp_path / "l.csv")
    assert not (tmp_path / "l.csv").exists()
    with pytest.raises(FileNotFoundError, match=r"none\.csv: no such file"):
        read_predictions(tmp_path / "none.csv")


def test_ges_missing_setup_flagged_reaches_predict_table(two_setups):
    from sklearn.dummy import DummyRegressor
    from sklearn.pipeline import make_pipeline

    from skstellar import predict_table
    from skstellar.preprocessing import SetupStitcher, SpectrumCleaner

    f = two_setups
    files = [f["A", "HR21"], f["A", "HR10"], f["B", "HR21"]]
    with pytest.warns(FutureWarning, match="on_bad='drop'"):
        assert len(read_ges_giraffe(files, on_missing="drop")) == 1
    s = read_ges_giraffe(files, on_bad="flag")
    assert s.ids.tolist() == [GES_ID, "07000000-1000000"] and s.meta.meta["dropped"] == {}
    assert np.isnan(s.flux("HR10")[1]).all() and np.isfinite(s.meta["rv"]).all()
    assert s.meta["file_HR10"][1] == "" and s.meta["status_flags_HR10"].tolist() == [0, 2048]
    pipe = make_pipeline(SpectrumCleaner(), SetupStitcher(), DummyRegressor())
    table = predict_table(pipe.fit(s[:1], [5000.0]), s)
    assert table["status"][1].startswith("HR10: setup missing")
    assert np.isnan(table["y0"][1]) and table["y0"][0] == 5000.0


@pytest.mark.parametrize("placeholder", ["None", "nan", " "])
def test_placeholder_ids_are_errors_naming_the_file(ges_path, galah_dir, tmp_path, placeholder):
    bad = ges_copy(ges_path, tmp_path / "bad.fits", cname=placeholder)
    with pytest.raises(ReadError, match=rf"{bad}: the star id \('Cname'.*placeholder"):
        read_ges_giraffe(bad)
    src = galah_camera(galah_dir, 1)[0]
    with fits.open(src) as hdul:
        hdul["normalized"].header["GAIA_ID"] = placeholder
        hdul.writeto(tmp_path / "galah.fits")
    with pytest.raises(ReadError, match=r"galah.fits: header keyword 'GAIA_ID'.*placeholder"):
        read_fits_spectra(tmp_path / "galah.fits", "CCD1", hdu="normalized", id_keyword="GAIA_ID")
