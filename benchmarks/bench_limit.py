"""The information limit of the mock survey's spectra, and how close the models come to it.

For each test star (disk stars, S/N >= 30) the Cramér-Rao bound is the smallest scatter any
unbiased estimator can reach from the preprocessed pixels at that star's S/N. The script
synthesises the star's noise-free spectrum and its neighbours at label +- h
(``skstellar.datasets.synthesize_spectra``, rest frame: the RV is known), runs them through
the fitted GIRAFFE chain (HR10 + HR21, 8669 pixels), and takes central finite differences
as the Jacobian J of the pixels with respect to Teff, log g, [Fe/H], [Mg/Fe], [Al/Fe] and the
nuisance microturbulence (unknown to the estimator, so it is marginalised: the bound is
``sqrt(diag(F^-1))`` with F the Fisher matrix of all six). The noise is the generator's:
sigma = sqrt(flux) / snr per native 0.05 A pixel, so a flux-conserving bin of width w has
variance flux / snr^2 * 0.05 / w (the correlation the RV correction and the rebinning put
between neighbours is neglected; the bound on the raw observed pixels agrees to 0.2 %).

The generator's own maximum-likelihood fit of the test spectra (same Jacobians, from the true
labels, pixels beyond 5 sigma ignored) shows that the bound is attainable on these pixels. The
script then trains PCA-50 + ridge, a polynomial spectrum emulator of the labels and the
microturbulence (degree 5, learned from the training spectra's 25 leading principal components,
S/N^2-weighted) whose best-fitting labels (``SpectrumEmulator.fit_labels``, The
Cannon's test step, from PCA + ridge's labels) are a generative estimate, the same emulator learned
from noise-free spectra of the training stars (what the training noise costs), and, unless
``--no-cnn``, a CNN ensemble of the default recipe (or of the parameters given with ``--set``). It
prints per model and label the scatter on the test stars and its ratio to the bound (rms over stars).

    python benchmarks/bench_limit.py                    # 6000 train, 400 test, 4 members keep 3
    python benchmarks/bench_limit.py --quick            # 600 train, 100 test, 2 members, 5 epochs
    python benchmarks/bench_limit.py --set "filters=(16, 16, 16)"   # a wider trunk
"""

import argparse
import ast
import time

import numpy as np
from astropy.table import Table

LABELS = ("teff", "logg", "feh", "mgfe", "alfe")
NUISANCES = ("vmic",)
STEP = {"teff": 20.0, "logg": 0.02, "feh": 0.01, "mgfe": 0.01, "alfe": 0.01, "vmic": 0.05}
UNITS = {"teff": "K", "logg": "dex", "feh": "dex", "mgfe": "dex", "alfe": "dex"}
NATIVE_STEP = 0.05


def pixel_widths(wavelength):
    """Bin width of every stitched pixel (each setup's grid is uniform; setups jump)."""
    d = np.diff(wavelength)
    before = np.concatenate([[d[0]], d])
    after = np.concatenate([d, [d[-1]]])
    return np.minimum(np.abs(before), np.abs(after))


def generator_model(labels, preprocessor, wavelength, snr):
    """The generator's noise-free pixels at ``labels`` (a dict of columns), their Jacobian with
    respect to the labels and nuisances (central differences) and the noise variance per pixel."""
    from skstellar.datasets import synthesize_spectra

    def pixels(values):
        spectra = synthesize_spectra(values, setups=("HR10", "HR21"), snr=None, rv=0.0)
        return preprocessor.transform(spectra).astype(np.float64)

    flux = pixels(labels)
    jac = np.empty(flux.shape + (len(LABELS + NUISANCES),))
    for k, name in enumerate(LABELS + NUISANCES):
        up, down = dict(labels), dict(labels)
        up[name] = labels[name] + STEP[name]
        down[name] = labels[name] - STEP[name]
        jac[..., k] = (pixels(up) - pixels(down)) / (2 * STEP[name])
    variance = np.clip(flux, 1e-3, None) / snr[:, None] ** 2 * (NATIVE_STEP / pixel_widths(wavelength))
    return flux, jac, variance


def true_labels(truth):
    return {k: np.asarray(truth[k], float) for k in (*LABELS, *NUISANCES, "ali")}


def cramer_rao(truth, preprocessor, wavelength):
    """Per star and label, the Cramér-Rao bound (marginalised over the nuisances)."""
    _, jac, variance = generator_model(true_labels(truth), preprocessor, wavelength, np.asarray(truth["snr"], float))
    fisher = np.einsum("npk,np,npl->nkl", jac, 1.0 / variance, jac)
    cov = np.linalg.inv(fisher)
    return np.sqrt(np.diagonal(cov, axis1=1, axis2=2))[:, : len(LABELS)]


def oracle_fit(X, truth, preprocessor, wavelength, n_iter=3, clip=5.0):
    """Maximum-likelihood labels of the preprocessed spectra X under the generator itself (the model a
    learned method can at best approach), Gauss-Newton from the true labels; pixels more than ``clip``
    sigma off the model (cosmic-ray hits the cleaner leaves in line cores, filled holes) are ignored."""
    labels = true_labels(truth)
    snr = np.asarray(truth["snr"], float)
    for _ in range(n_iter):
        flux, jac, variance = generator_model(labels, preprocessor, wavelength, snr)
        residual = X - flux
        weight = (residual**2 < clip**2 * variance) / variance
        normal = np.einsum("npk,np,npl->nkl", jac, weight, jac)
        step = np.linalg.solve(normal, np.einsum("npk,np->nk", jac, weight * residual)[..., None])[..., 0]
        for i, name in enumerate(LABELS + NUISANCES):
            labels[name] = labels[name] + step[:, i]
    return np.column_stack([labels[k] for k in LABELS])


def pca_ridge():
    from sklearn.decomposition import PCA
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline

    return make_pipeline(PCA(50, random_state=0), RidgeCV(alphas=np.logspace(-4, 2, 13)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=6000)
    parser.add_argument("--n-test", type=int, default=400)
    parser.add_argument("--n-models", type=int, default=4)
    parser.add_argument("--n-keep", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--no-cnn", action="store_true", help="the bound and PCA + ridge only")
    parser.add_argument("--quick", action="store_true", help="600 train, 100 test, 2 members, 5 epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--emulator", type=int, default=5, metavar="DEGREE",
                        help="also fit the labels with a SpectrumEmulator of this degree (0: not)")
    parser.add_argument("--components", type=int, default=25,
                        help="the emulator's n_components (0: learn from the spectra as they are)")
    parser.add_argument("--alpha", type=float, default=1e-6, help="the emulator's ridge penalty")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a CNNLabelRegressor parameter for the CNN run, e.g. --set filters='(16, 16, 16)'")
    args = parser.parse_args()
    recipe = {}
    for item in args.set:
        key, _, value = item.partition("=")
        recipe[key.strip()] = ast.literal_eval(value)
    if args.quick:
        args.n_train, args.n_test, args.n_models, args.n_keep, args.max_epochs = 600, 100, 2, 2, 5

    from skstellar.datasets import make_giraffe_survey
    from skstellar.preprocessing import giraffe_preprocessor

    t0 = time.perf_counter()
    spectra, truth = make_giraffe_survey(args.n_train + args.n_test, population="disk", snr=(30, 150),
                                         random_state=args.seed, cache=True)
    train, test = spectra[: args.n_train], spectra[args.n_train:]
    t_train, t_test = truth[: args.n_train], truth[args.n_train:]
    pre = giraffe_preprocessor().fit(train)
    X_train, X_test = pre.transform(train), pre.transform(test)
    y_train = np.column_stack([np.asarray(t_train[k], float) for k in LABELS])
    y_test = np.column_stack([np.asarray(t_test[k], float) for k in LABELS])
    print(f"mock survey: {args.n_train} train, {args.n_test} test disk stars at S/N 30-150 "
          f"({time.perf_counter() - t0:.0f} s)")

    t0 = time.perf_counter()
    wavelength = pre.named_steps["stitch"].wavelength_
    bound = cramer_rao(t_test, pre, wavelength)
    print(f"Cramér-Rao bound of {args.n_test} test stars: {time.perf_counter() - t0:.0f} s")

    rows = {"bound": np.sqrt(np.mean(bound**2, axis=0))}
    t0 = time.perf_counter()
    own = oracle_fit(X_test.astype(np.float64), t_test, pre, wavelength)
    rows["generator's own fit"] = np.std(own - y_test, axis=0)
    print(f"the generator's own maximum-likelihood fit: {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    ridge = pca_ridge().fit(X_train, y_train)
    rows["PCA-50 + ridge"] = np.std(ridge.predict(X_test) - y_test, axis=0)
    print(f"PCA-50 + ridge: {time.perf_counter() - t0:.0f} s")
    if args.emulator:
        from skstellar.datasets import synthesize_spectra
        from skstellar.filters import SpectrumEmulator

        # The Cannon's test step: the labels whose emulated spectrum fits best, from PCA + ridge's.
        # The emulator also takes the nuisance (microturbulence, known for training stars as in
        # Gaia-ESO) and weights training stars by S/N^2; the fit marginalises it like the bound.
        names = LABELS + NUISANCES
        z_train = np.column_stack([np.asarray(t_train[k], float) for k in names])
        start = pca_ridge().fit(X_train, z_train).predict(X_test)
        snr2 = np.asarray(t_train["snr"], float) ** 2
        t0 = time.perf_counter()
        emulator = SpectrumEmulator(degree=args.emulator, alpha=args.alpha, n_components=args.components or None,
                                    random_state=args.seed)
        emulator.fit(z_train, X_train, sample_weight=snr2)
        fitted = emulator.fit_labels(X_test, start, n_iter=8, n_jobs=-1)[:, : len(LABELS)]
        name = f"emulator fit (degree {args.emulator}, {args.components or 'no'} components)"
        rows[name] = np.std(fitted - y_test, axis=0)
        print(f"{name}: emulator fit + label fit {time.perf_counter() - t0:.0f} s")
        # The same emulator learned from noise-free spectra of the training stars: what the noise
        # of the training set costs a learned model, apart from the model's form.
        noise_free = pre.transform(synthesize_spectra(true_labels(t_train), setups=("HR10", "HR21"), snr=None))
        emulator.set_params(n_components=None).fit(z_train, noise_free)
        fitted = emulator.fit_labels(X_test, start, n_iter=8, n_jobs=-1)[:, : len(LABELS)]
        rows["same, noise-free training"] = np.std(fitted - y_test, axis=0)
    if not args.no_cnn:
        from skstellar.models import CNNLabelRegressor

        t0 = time.perf_counter()
        cnn = CNNLabelRegressor(n_models=args.n_models, n_keep=args.n_keep, max_epochs=args.max_epochs,
                                random_state=args.seed, label_names=list(LABELS), verbose=1, **recipe)
        cnn.fit(X_train, y_train)
        mean, std = cnn.predict(X_test, return_std=True)
        rows["CNN ensemble"] = np.std(mean - y_test, axis=0)
        inside = np.mean(np.abs(mean - y_test) <= std, axis=0)
        print(f"CNN ensemble ({args.n_models} keep {args.n_keep}, {recipe or 'default recipe'}): "
              f"{time.perf_counter() - t0:.0f} s; "
              "within 1 calibrated std: " + ", ".join(f"{k} {100 * v:.0f} %" for k, v in zip(LABELS, inside)))

    table = Table()
    table["model"] = list(rows)
    for i, k in enumerate(LABELS):
        bound_k = rows["bound"][i]
        table[f"{k} [{UNITS[k]}]"] = [f"{v[i]:.3g}" if name == "bound" else f"{v[i]:.3g} ({v[i] / bound_k:.2f}x)"
                                      for name, v in rows.items()]
    print()
    print(f"Scatter of {args.n_test} test stars (S/N 30-150) and its ratio to the Cramér-Rao bound (rms over stars)")
    table.pprint(max_width=-1, max_lines=-1)

if __name__ == "__main__":
    main()
