"""
The preprocessing chain, step by step
=====================================

A raw GIRAFFE spectrum is not yet a row a network can read: it carries cosmic-ray spikes and
dead pixels, it sits in the observed frame (shifted by the star's radial velocity), its pixels
differ from star to star and setup to setup, and a star observed in two setups (HR10 and HR21)
has two spectra. :func:`skstellar.preprocessing.giraffe_preprocessor` chains the four steps of
Ambrosch et al. (2023, Sect. 4.1.1) that fix this, each a scikit-learn transformer:

1. :class:`~skstellar.preprocessing.SpectrumCleaner` replaces spikes above ``median + 5 sigma``
   (robust sigma) and unusable pixels by the median;
2. :class:`~skstellar.preprocessing.RadialVelocityCorrector` moves the spectrum to the rest frame
   with the catalogue RV in ``meta["rv"]``;
3. :class:`~skstellar.preprocessing.Rebinner` rebins flux-conservingly onto the thesis grid
   (0.06 Å in HR10, 0.1 Å in HR21);
4. :class:`~skstellar.preprocessing.SetupStitcher` concatenates the setups into one vector of
   8669 pixels.

Here we follow one mock star through the chain and plot what each step does around the Ca II
line at 8542 Å.
"""

# %%
# A small mock survey
# -------------------
# :func:`~skstellar.datasets.make_giraffe_survey` draws raw, observed-frame HR10 + HR21 spectra
# with cosmic rays and zero-flux runs, and returns their true labels.
import matplotlib.pyplot as plt
import numpy as np

from skstellar.datasets import make_giraffe_survey
from skstellar.preprocessing import giraffe_preprocessor

spectra, labels = make_giraffe_survey(40, snr=(40, 80), random_state=1)
print(spectra)
for column, fmt in (("teff", ".0f"), ("logg", ".2f"), ("feh", ".2f"), ("rv", ".1f"), ("snr", ".0f")):
    labels[column].info.format = fmt
print(labels["id", "teff", "logg", "feh", "rv", "snr"][:3])

# %%
# Fit the chain, then apply its steps one at a time
# -------------------------------------------------
# The fitted pipeline fixes the output grid; indexing it gives each step, so we can keep every
# intermediate :class:`~skstellar.spectra.SpectralSet`.
pipe = giraffe_preprocessor().fit(spectra)
stages = {"raw": spectra}
current = spectra
for name, step in pipe.steps[:-1]:
    current = step.transform(current)
    stages[name] = current
X = pipe.steps[-1][1].transform(current)
print("steps:", [name for name, _ in pipe.steps], "-> X", X.shape, X.dtype)

# %%
# Plot each stage for one star
# ----------------------------
# We pick the star and the HR21 window with the largest spike the cleaner removed, so that both
# the cleaning and the Doppler shift show.
cleaned = stages["clean"]
removed = spectra.flux("HR21") - cleaned.flux("HR21")
star, pixel = np.unravel_index(np.argmax(removed), removed.shape)
centre = spectra.wavelength("HR21")[pixel]
window = (centre - 15, centre + 15)
rv = float(spectra.meta["rv"][star])


def plot_stage(ax, wave, flux, **style):
    inside = (wave > window[0]) & (wave < window[1])
    ax.plot(wave[inside], flux[inside], lw=0.8, drawstyle="steps-mid", **style)


fig, axes = plt.subplots(4, 1, figsize=(8, 9), sharex=True)
plot_stage(axes[0], spectra.wavelength("HR21"), spectra.flux("HR21")[star])
axes[0].set_title(f"raw, observed frame (RV {rv:+.0f} km/s)", fontsize=10)
plot_stage(axes[1], spectra.wavelength("HR21"), spectra.flux("HR21")[star], color="0.7", label="raw")
plot_stage(axes[1], cleaned.wavelength("HR21"), cleaned.flux("HR21")[star], label="cleaned")
axes[1].legend(fontsize=8)
axes[1].set_title(f"cleaned: {int(cleaned.meta['n_cleaned_HR21'][star])} HR21 pixels replaced", fontsize=10)
shifted = stages["rv"]
plot_stage(axes[2], spectra.wavelength("HR21"), cleaned.flux("HR21")[star], color="0.7", label="observed frame")
plot_stage(axes[2], shifted.wavelength("HR21")[star], shifted.flux("HR21")[star], label="rest frame")
axes[2].legend(fontsize=8)
axes[2].set_title("shifted to the rest frame", fontsize=10)
stitcher = pipe.steps[-1][1]
columns = stitcher.setup_slices_["HR21"]
plot_stage(axes[3], stitcher.wavelength_[columns], X[star, columns], color="C3")
axes[3].set_title("rebinned to 0.1 Å and stitched: part of a row of X", fontsize=10)
axes[3].set_xlabel("wavelength (Å)")
for ax in axes:
    ax.set_ylabel("flux")
fig.suptitle(f"star {labels['id'][star]}: Teff {labels['teff'][star]:.0f} K, log g {labels['logg'][star]:.2f}")
fig.tight_layout()

# %%
# The stitched feature vector
# ---------------------------
# The columns of ``X`` are named by setup and wavelength, so a plot against
# ``wavelength_`` is the whole spectrum the network sees.
print(stitcher.get_feature_names_out()[[0, -1]])
fig, ax = plt.subplots(figsize=(8, 3))
for setup, columns in stitcher.setup_slices_.items():
    ax.plot(np.arange(X.shape[1])[columns], X[star, columns], lw=0.4, label=setup)
ax.set_xlabel("pixel of the stitched vector")
ax.set_ylabel("normalised flux")
ax.legend()
fig.tight_layout()
plt.show()
