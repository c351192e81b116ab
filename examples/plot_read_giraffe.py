"""
Reading Gaia-ESO GIRAFFE files, and what a bad file gives
=========================================================

A Gaia-ESO GIRAFFE survey is a directory of FITS files, one star in one setup per file.
:func:`skstellar.io.read_ges_giraffe` reads any mix of them, matches the setups of each star
by its ``Cname`` and returns one :class:`~skstellar.spectra.SpectralSet`, with the radial
velocity and S/N of the ``velclass`` table in its ``meta``.

No real files ship with the package, so this example first writes a few mock stars as GES
files with :func:`skstellar.io.write_ges_giraffe` (the same layout: ``normalised_spectrum``,
inverse variances, the ``velclass`` table), reads them back, and plots one star. Then it
breaks a file, as an interrupted download would, and shows what the reader says, and what
``on_bad="drop"`` and ``on_bad="flag"`` do with the star that lost a setup.
"""

# %%
# Write a few mock stars as GES files
# -----------------------------------
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from skstellar import StarFlag
from skstellar.datasets import make_giraffe_survey
from skstellar.explain import default_lines
from skstellar.io import ReadError, read_ges_giraffe, write_ges_giraffe

mock, truth = make_giraffe_survey(4, snr=(60, 120), random_state=0)
folder = Path(tempfile.mkdtemp())
paths = write_ges_giraffe(mock, folder)
print(len(paths), "files, e.g.", paths[0].name)

# %%
# Read them back
# --------------
# The files may come in any order and mix of setups. The setups are ordered by wavelength;
# ``meta`` holds, per star, ``rv`` (km/s) and ``snr`` combined over the setups (the lowest
# S/N, so that a cut on it asks every setup to pass) and each setup's own values and file.
spectra = read_ges_giraffe(sorted(folder.glob("*.fits")))
print(spectra)
spectra.meta["rv"].info.format = ".1f"
spectra.meta["snr"].info.format = ".0f"
print(spectra.meta["id", "rv", "snr"])

# %%
# One star in HR10 and HR21
# -------------------------
# The spectra are continuum-normalised and still in the observed frame (barycentric, shifted by
# the star's radial velocity), and raw: the narrow spikes cut off at the top are the cosmic-ray
# hits the mock survey plants, which :class:`~skstellar.preprocessing.SpectrumCleaner` removes
# later. The lines of the package's line table (:func:`skstellar.explain.default_lines`) are
# marked at their rest wavelength moved by the star's ``rv``: Mg I and Al I, the lines of
# [Mg/Fe] and [Al/Fe], and the Ca II triplet, the broad lines of HR21. The top panels show each
# setup whole, the bottom ones a few Ångström around Mg I 5528 Å and the Al I lines at
# 5557 Å, and around the Al I doublet at 8773 Å and Mg I 8806.75 Å, where the pixels
# (0.05 Å) show.
star = 0
rv = float(spectra.meta["rv"][star])
doppler = 1 + rv / 299792.458
lines = default_lines()
colours = {"Mg I": "tab:green", "Al I": "tab:red", "Ca II": "tab:purple"}
lines = lines[np.isin(lines["species"], list(colours))]

fig, axes = plt.subplot_mosaic("AAABBBBB;CCCCDDDD", figsize=(11, 6.5))
panels = {"A": ("HR10", None), "B": ("HR21", None), "C": ("HR10", (5524, 5562)), "D": ("HR21", (8766, 8812))}
for key, (setup, zoom) in panels.items():
    ax = axes[key]
    wave, flux = spectra.wavelength(setup), spectra.flux(setup)[star]
    inside = np.ones(wave.size, bool) if zoom is None else (wave > zoom[0]) & (wave < zoom[1])
    ax.plot(wave[inside], flux[inside], lw=0.5 if zoom is None else 0.9, color="k",
            drawstyle="default" if zoom is None else "steps-mid")
    ax.set_xlim(wave[inside][0], wave[inside][-1])
    ax.set_ylim(0.15 if zoom is None else 0.55, 1.25 if zoom is None else 1.12)
    previous = -np.inf
    for line in lines[lines["setup"] == setup]:
        observed = line["wavelength"] * doppler
        if wave[inside][0] < observed < wave[inside][-1]:
            ax.axvline(observed, color=colours[line["species"]], lw=0.8, ls=":")
            if zoom is not None:  # a close pair of lines gets its labels on either side
                side = "left" if observed - previous < 2 else "right"
                ax.text(observed, 0.02, f" {line['species']} {line['wavelength']:.2f} ", rotation=90, fontsize=7,
                        ha=side, va="bottom", color=colours[line["species"]], transform=ax.get_xaxis_transform())
                previous = observed
    ax.set_ylabel("normalised flux")
    ax.set_title(setup if zoom is None else f"{setup}, {zoom[0]}-{zoom[1]} Å", fontsize=10)
    if zoom is not None:
        ax.set_xlabel("observed wavelength (Å)")
handles = [plt.Line2D([], [], color=colour, ls=":", label=name) for name, colour in colours.items()]
axes["B"].legend(handles=handles, fontsize=8, loc="lower right", ncol=3)
fig.suptitle(f"{spectra.meta['id'][star]}: Teff {truth['teff'][star]:.0f} K, log g {truth['logg'][star]:.2f}, "
             f"[Fe/H] {truth['feh'][star]:+.2f}, rv {rv:+.1f} km/s, S/N {spectra.meta['snr'][star]:.0f}",
             fontsize=10)
fig.tight_layout()

# %%
# A broken file
# -------------
# Replace one star's HR21 file by what a failed download leaves behind: an HTML error page
# under the FITS name. Whatever astropy raises inside, the reader raises a
# :class:`~skstellar.io.ReadError` (a ``ValueError``) that names the file, so that among
# 10\ :sup:`5` files the bad one is known.
broken = folder / paths[3].name
broken.write_text("<html><body>502 Bad Gateway</body></html>\n")
try:
    read_ges_giraffe(sorted(folder.glob("*.fits")))
except ReadError as error:
    print("ReadError:", str(error).replace(str(folder), "<folder>"))

# %%
# Leave the file out, and the star lacks a setup
# -----------------------------------------------
# Reading the other files, that star has an HR10 spectrum but no HR21. By default that is an
# error listing the stars and their missing setups; ``on_bad="drop"`` leaves such stars out and
# lists them in ``meta.meta["dropped"]``; ``on_bad="flag"`` keeps them, the missing setup all
# NaN and the bit :attr:`~skstellar.StarFlag.SETUP_MISSING` set in ``status_flags_<setup>``, so
# that :func:`skstellar.predict_table` gives the star a row with NaN labels and the reason.
# (The command line's ``skstellar predict`` does all this for you: see
# :doc:`/auto_examples/plot_command_line`.)
readable = [path for path in sorted(folder.glob("*.fits")) if path != broken]
try:
    read_ges_giraffe(readable)
except ValueError as error:
    print("ValueError:", error)

dropped = read_ges_giraffe(readable, on_bad="drop")
print(f"on_bad='drop': {len(dropped)} stars; dropped {dropped.meta.meta['dropped']}")

flagged = read_ges_giraffe(readable, on_bad="flag")
flags = flagged.meta["status_flags_HR21"]
print(f"on_bad='flag': {len(flagged)} stars")
for star_id, bits, flux in zip(flagged.meta["id"], flags, flagged.flux("HR21")):
    status = StarFlag(int(bits)).name or "ok"
    print(f"  {star_id}  HR21 {status:13s}  flux all NaN: {bool(np.isnan(flux).all())}")

# %%
# The flagged set, star by star
# -----------------------------
# Every star keeps its HR10 spectrum; the star whose HR21 file was broken (star 1) has an empty
# HR21 panel (NaN flux draws nothing) and carries the flag. Later steps pass the flag on; a
# flagged star gets no labels, never wrong ones.
fig, axes = plt.subplots(len(flagged), 2, figsize=(11, 5.5), sharex="col", sharey=True,
                         gridspec_kw={"width_ratios": [1, 1.8]})
for star_row, bits in enumerate(flags):
    for column, setup in enumerate(flagged.setups):
        ax = axes[star_row, column]
        ax.plot(flagged.wavelength(setup), flagged.flux(setup)[star_row], lw=0.4, color="k")
        if column == 0:
            ax.set_ylabel(f"star {star_row}", fontsize=9)
    if bits:
        axes[star_row, 1].text(0.5, 0.5, f"HR21 all NaN: {StarFlag(int(bits)).name}", ha="center", va="center",
                               color="tab:red", transform=axes[star_row, 1].transAxes)
axes[0, 0].set_title("HR10", fontsize=10)
axes[0, 1].set_title("HR21", fontsize=10)
axes[-1, 0].set_xlabel("observed wavelength (Å)")
axes[-1, 1].set_xlabel("observed wavelength (Å)")
axes[0, 0].set_ylim(0, 1.2)
fig.suptitle("read_ges_giraffe(..., on_bad='flag'): the star that lost its HR21 file is kept, flagged", fontsize=10)
fig.tight_layout()
plt.show()
