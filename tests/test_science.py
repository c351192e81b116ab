"""Tests of skstellar.science: disks, Li-rich giants, quality cuts, abundance scales."""

import numpy as np
import pandas as pd
import pytest
from astropy.table import MaskedColumn, Table
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skstellar._solar import SOLAR_ABUNDANCES
from skstellar.datasets._populations import draw_labels
from skstellar.science import (
    DiskSeparator,
    from_xfe,
    from_xh,
    quality_cuts,
    select_li_rich,
    separate_disks,
    to_xfe,
    to_xh,
)


# -- the thin and thick disks ------------------------------------------------------------
def noisy_disk(n, rng):
    """Thin and thick disk stars of the mock survey with the ensemble's label noise."""
    lab = draw_labels(n, "disk", rng)
    keep = np.isin(lab["population"], ["thin", "thick"])
    k = int(keep.sum())
    return Table(
        {
            "feh": lab["feh"][keep] + rng.normal(0.0, 0.04, k),
            "mgfe": lab["mgfe"][keep] + rng.normal(0.0, 0.03, k),
            "population": lab["population"][keep],
        }
    )


def test_separate_disks_finds_the_true_populations(rng):
    t = noisy_disk(1500, rng)
    population, probability = separate_disks(t)
    truth = np.asarray(t["population"])
    assigned = np.isin(population, ["thin", "thick"])
    assert assigned.mean() >= 1 / 3
    assert (population[assigned] == truth[assigned]).mean() >= 0.90
    assert set(population) <= {"thin", "thick", "noise"}
    assert np.all(probability[population == "noise"] == 0)
    assert np.all((probability[assigned] > 0) & (probability[assigned] <= 1))
    # the same stars as arrays, a DataFrame or a dict give the same answer
    same = [
        separate_disks(t["feh"], t["mgfe"]),
        separate_disks(t.to_pandas()),
        separate_disks({"FEH": np.asarray(t["feh"]), "MG_FE": np.asarray(t["mgfe"])}, columns=("FEH", "MG_FE")),
    ]
    for other in same:
        np.testing.assert_array_equal(other.population, population)
        np.testing.assert_array_equal(other.probability, probability)


def test_disk_names_follow_mean_mgfe_not_cluster_number(rng):
    t = noisy_disk(800, rng)
    order = np.argsort(t["population"] == "thin", kind="stable")  # thick stars first, then thin
    t = t[order]
    sep = DiskSeparator().fit(np.column_stack([t["feh"], t["mgfe"]]))
    names = sep.cluster_names_
    means = sep.cluster_means_[:, 1]
    thin = next(i for i, name in names.items() if name == "thin")
    thick = next(i for i, name in names.items() if name == "thick")
    assert means[thick] > means[thin]
    truth = np.asarray(t["population"])
    assigned = np.isin(sep.labels_, ["thin", "thick"])
    assert (sep.labels_[assigned] == truth[assigned]).mean() >= 0.90


def test_disk_separator_assigns_new_stars_and_never_nan_ones(rng):
    train, new = noisy_disk(1000, rng), noisy_disk(400, rng)
    X = np.column_stack([train["feh"], train["mgfe"]])
    X[:5, 1] = np.nan  # NaN stars take no part and stay unassigned
    sep = DiskSeparator().fit(X)
    assert sep.labels_[:5].tolist() == ["missing"] * 5 and np.isnan(sep.probabilities_[:5]).all()
    Xn = np.column_stack([new["feh"], new["mgfe"]])
    Xn[0, 0] = np.nan
    population, probability = sep.predict(Xn, return_probability=True)
    assert population[0] == "missing" and np.isnan(probability[0])
    truth = np.asarray(new["population"])
    assigned = np.isin(population, ["thin", "thick"])
    assert assigned.mean() >= 1 / 3
    assert (population[assigned] == truth[assigned]).mean() >= 0.90
    assert np.array_equal(sep.predict(Xn), population)


def test_disk_separator_pickles_refits_and_predicts_row_by_row(rng):
    # What the common checks marked in tests/test_common.py test, on the population names.
    import pickle

    t = noisy_disk(600, rng)
    X = np.column_stack([t["feh"], t["mgfe"]])
    sep = DiskSeparator().fit(X)
    pop = sep.predict(X)
    back = pickle.loads(pickle.dumps(sep))
    np.testing.assert_array_equal(back.predict(X), pop)
    again = DiskSeparator().fit(X)  # idempotent
    np.testing.assert_array_equal(again.labels_, sep.labels_)
    np.testing.assert_array_equal(again.predict(X), pop)
    order = rng.permutation(len(X))  # order and subset invariance
    np.testing.assert_array_equal(sep.predict(X[order]), pop[order])
    np.testing.assert_array_equal(sep.predict(X[:50]), pop[:50])
    # a fit that finds no cluster calls every star noise, without hdbscan's warning
    flat = DiskSeparator(min_cluster_size=0.9).fit(rng.uniform(size=(40, 2)))
    assert flat.cluster_names_ == {}
    assert set(flat.predict(rng.uniform(size=(5, 2)))) == {"noise"}


def test_disk_separator_names_a_middle_cluster_other(rng):
    # three sequences in [Mg/Fe]: lowest thin, highest thick, the one between "other"
    mg = np.repeat([0.0, 0.15, 0.3], 200)
    X = np.column_stack([rng.normal(-0.2, 0.2, 600), mg + rng.normal(0.0, 0.01, 600)])
    sep = DiskSeparator().fit(X)
    assert sorted(sep.cluster_names_.values()) == ["other", "thick", "thin"]
    assert sep.predict([[-0.2, 0.0], [-0.2, 0.15], [-0.2, 0.3]]).tolist() == ["thin", "other", "thick"]


def test_disk_bad_input(rng):
    t = noisy_disk(300, rng)
    with pytest.raises(KeyError, match=r"no column 'mgfe' \(for \[Mg/Fe\]\).*'feh', 'MGFE'"):
        t.rename_column("mgfe", "MGFE")
        separate_disks(t)
    with pytest.raises(ValueError, match=r"one length; got shapes \(3,\) and \(2,\)"):
        separate_disks([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="two column names"):
        separate_disks(t, columns="feh")
    with pytest.raises(ValueError, match="infinity"):
        separate_disks([0.1, np.inf, 0.3], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"0 star\(s\) with finite labels \(of 3\)"):
        separate_disks([np.nan] * 3, [0.1, 0.2, 0.3])
    with pytest.raises(TypeError, match="expected a table.*list"):
        separate_disks([[0.1, 0.2]])
    with pytest.raises(InvalidParameterError, match="min_cluster_size"):
        separate_disks(t["feh"], t["MGFE"], min_cluster_size=1.5)
    with pytest.raises(ValueError, match="alpha_column=5 is not a column of X with 2 columns"):
        DiskSeparator(alpha_column=5).fit(np.ones((10, 2)))
    with pytest.raises(NotFittedError):
        DiskSeparator().predict([[0.0, 0.1]])
    sep = DiskSeparator().fit(np.column_stack([t["feh"], t["MGFE"]]))
    with pytest.raises(ValueError, match="3 features"):
        sep.predict(np.zeros((2, 3)))


# -- Li-rich giants ------------------------------------------------------------------------
def noisy_catalogue(n, rng):
    """The mock survey's labels with noise like the ensemble's, and good errors and S/N."""
    lab = draw_labels(n, "disk", rng)
    cat = Table(
        {
            "id": np.arange(n),
            "teff": lab["teff"] + rng.normal(0.0, 40.0, n),
            "logg": lab["logg"] + rng.normal(0.0, 0.07, n),
            "feh": lab["feh"] + rng.normal(0.0, 0.04, n),
            "ali": lab["ali"] + rng.normal(0.0, 0.1, n),
            "snr": rng.uniform(30.0, 150.0, n),
            "e_teff": rng.uniform(15.0, 45.0, n),
            "e_logg": rng.uniform(0.02, 0.08, n),
            "e_feh": rng.uniform(0.01, 0.05, n),
            "e_ali": rng.uniform(0.02, 0.08, n),
        }
    )
    return cat, lab["li_rich"]


def test_select_li_rich_finds_the_planted_giants(rng):
    cat, truth = noisy_catalogue(4000, rng)
    found = select_li_rich(cat)
    hit = truth[np.asarray(found["id"])]
    assert truth.sum() == 80
    assert hit.mean() >= 0.8  # precision
    assert hit.sum() / truth.sum() >= 0.8  # recall
    assert np.all(np.diff(found["ali"]) <= 0)
    # a DataFrame, a structured array and a dict select the same stars
    for table in (cat.to_pandas(), cat.as_array(), {k: np.asarray(cat[k]) for k in cat.colnames}):
        out = select_li_rich(table)
        ids = out["id"].to_numpy() if isinstance(out, pd.DataFrame) else np.asarray(out["id"])
        np.testing.assert_array_equal(ids, found["id"])


def test_select_li_rich_thresholds_skips_and_nan():
    t = Table(
        {
            "id": ["a", "b", "c", "d", "e"],
            "teff": [4600.0, 4800.0, 5900.0, 4700.0, 4500.0],
            "logg": [2.4, 2.6, 4.3, 2.5, 2.2],
            "ali": [2.4, 3.1, 2.6, np.nan, 1.9],
            "snr": [60.0, 20.0, 80.0, 90.0, 70.0],
            "e_teff": [30.0, 30.0, 30.0, 30.0, 30.0],
            "e_logg": [0.05, 0.05, 0.05, 0.05, 0.05],
            "e_feh": [0.05, 0.05, 0.05, 0.05, 0.05],
            "e_ali": MaskedColumn([0.05, 0.05, 0.05, 0.05, 0.05], mask=[False, False, False, False, True]),
        }
    )
    assert select_li_rich(t)["id"].tolist() == ["a"]  # b: S/N 20
    assert select_li_rich(t, min_snr=None)["id"].tolist() == ["b", "a"]
    assert select_li_rich(t, min_snr=None, max_logg=None, max_teff=None)["id"].tolist() == ["b", "c", "a"]
    # a NaN A(Li) or a masked error is never selected, whatever the thresholds
    assert select_li_rich(t, min_ali=1.0)["id"].tolist() == ["a"]
    assert "d" not in select_li_rich(t, min_ali=None, min_snr=None)["id"].tolist()
    assert select_li_rich(t, min_ali=1.0, max_e_ali=None, min_snr=None)["id"].tolist() == ["b", "a", "e"]


def test_select_li_rich_bad_input():
    t = Table({"TEFF": [4500.0], "LOGG": [2.0], "LI1": [2.5]})
    with pytest.raises(KeyError, match=r"no column 'ali' \(for the cut min_ali=2.0\).*'TEFF', 'LOGG', 'LI1'"):
        select_li_rich(t)
    cols = {"ali": "LI1", "teff": "TEFF", "logg": "LOGG"}
    with pytest.raises(KeyError, match=r"no column 'snr' \(for the cut min_snr=25.0\)"):
        select_li_rich(t, columns=cols)
    assert len(select_li_rich(t, columns=cols, on_missing="skip")) == 1
    with pytest.raises(KeyError, match=r"no column 'ali' \(for sorting by A\(Li\)\)"):
        select_li_rich(t, on_missing="skip")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['li'\]"):
        select_li_rich(t, columns={"li": "LI1"})
    with pytest.raises(ValueError, match="min_ali must be a finite number or None, got 'two'"):
        select_li_rich(t, columns=cols, on_missing="skip", min_ali="two")
    with pytest.raises(ValueError, match="max_teff must be a finite number or None, got nan"):
        select_li_rich(t, columns=cols, on_missing="skip", max_teff=np.nan)
    with pytest.raises(ValueError, match="on_missing must be 'raise' or 'skip'"):
        select_li_rich(t, on_missing="ignore")
    with pytest.raises(ValueError, match="column 'LI1' is not numeric"):
        select_li_rich(Table({"LI1": ["rich"], "TEFF": [4500.0], "LOGG": [2.0]}), columns=cols, on_missing="skip")
    with pytest.raises(TypeError, match="expected a table.*ndarray"):
        select_li_rich(np.ones((3, 3)))


def test_select_li_rich_on_the_real_gaia_eso_hr15n_labels(shared_data):
    # Gaia-ESO iDR6 training labels of Nepal et al. (2023): TEFF, LOGG, FEH, LI1; no S/N or errors.
    t = Table.read(shared_data / "labels" / "labels_GIRAFFE_HR15N_training.csv", format="ascii.csv")
    cols = {"ali": "LI1", "teff": "TEFF", "logg": "LOGG"}
    with pytest.raises(KeyError, match="no column 'snr'"):
        select_li_rich(t, columns=cols)
    found = select_li_rich(t, columns=cols, on_missing="skip")
    assert len(found) == 38  # of 7031 stars
    assert found["LI1"][0] == pytest.approx(t["LI1"].max())
    assert np.all(found["LOGG"] < 3.5) and np.all(found["TEFF"] < 5500) and np.all(found["LI1"] > 2)


# -- quality cuts --------------------------------------------------------------------------
def catalogue():
    return Table(
        {
            "snr": [80.0, 25.0, 60.0, 50.0, np.nan, 45.0],
            "e_teff": [60.0, 90.0, 250.0, 100.0, 80.0, 70.0],
            "e_logg": [0.1, 0.1, 0.4, 0.1, 0.1, 0.1],
            "e_mgfe": [0.05, 0.05, 0.05, 0.25, 0.05, 0.05],
            "e_alfe": [0.05, 0.05, 0.05, 0.05, 0.05, 0.05],
            "tech": MaskedColumn(["", "", "", "", "", "10106-11-12-01"],
                                 mask=[True, False, False, False, False, False]),
            "peculi": ["", " ", "", "", "", ""],
            "vsini": [5.0, 3.0, 30.0, 8.0, 6.0, 4.0],
            "mh": [0.0, -0.2, 0.1, -0.5, 0.1, 0.0],
            "feh": [0.05, -0.1, 0.1, -0.1, 0.1, 0.0],
        }
    )


def test_quality_cuts_mask_and_counts():
    mask, counts = quality_cuts(catalogue())
    assert mask.tolist() == [True, False, False, False, False, False]
    rows = {r["cut"]: (r["rejected"], r["only"]) for r in counts}
    assert rows == {
        "snr": (2, 2),  # star 1 (S/N 25) and star 4 (NaN) fail only this cut
        "e_teff": (1, 0),
        "e_logg": (1, 0),
        "e_abundance": (1, 0),
        "flags": (1, 1),  # star 5's TECH flag; a masked or blank flag is empty
        "vsini": (1, 0),
        "mh_feh": (1, 0),  # star 3: |-0.5 + 0.1| = 0.4
    }
    assert counts["columns"][list(counts["cut"]).index("mh_feh")] == "mh, feh"
    # thresholds are overridable, a None skips the cut
    mask, counts = quality_cuts(catalogue(), min_snr=20.0, empty_flags=False, max_e_abundance=None)
    assert mask.tolist() == [True, True, False, False, False, True]
    assert "flags" not in counts["cut"] and "e_abundance" not in counts["cut"]


def test_quality_cuts_on_other_tables_and_column_names():
    t = catalogue()
    expected = quality_cuts(t).mask
    ges = t.copy()
    for old, new in (("snr", "SNR"), ("e_teff", "E_TEFF"), ("vsini", "VSINI"), ("mh", "MH"), ("feh", "FEH")):
        ges.rename_column(old, new)
    cols = {"snr": "SNR", "e_teff": "E_TEFF", "vsini": "VSINI", "mh_feh": ("MH", "FEH")}
    np.testing.assert_array_equal(quality_cuts(ges, columns=cols).mask, expected)
    df = t.to_pandas()
    assert df["tech"].isna()[0]  # pandas holds the masked flag as a missing value
    np.testing.assert_array_equal(quality_cuts(df).mask, expected)
    df["peculi"] = pd.Series([None, "", np.nan, None, pd.NA, None], dtype=object)  # missing = empty
    np.testing.assert_array_equal(quality_cuts(df).mask, expected)
    d = {k: np.asarray(t[k]) for k in t.colnames if k not in ("tech",)}
    np.testing.assert_array_equal(quality_cuts(d, columns={"flags": "peculi"}).mask,
                                  [True, False, False, False, False, True])


def test_quality_cuts_bad_input():
    t = catalogue()
    del t["vsini"]
    with pytest.raises(KeyError, match=r"no column 'vsini' \(for the vsini cut\)"):
        quality_cuts(t)
    mask, counts = quality_cuts(t, on_missing="skip")
    assert "vsini" not in counts["cut"] and len(counts) == 6
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['vsin'\]"):
        quality_cuts(t, columns={"vsin": "v"})
    with pytest.raises(ValueError, match=r"columns\['mh_feh'\] must be two names"):
        quality_cuts(t, columns={"mh_feh": "mh"})
    with pytest.raises(ValueError, match="the threshold of the snr cut must be a finite number or None, got '30'"):
        quality_cuts(t, min_snr="30", on_missing="skip")
    with pytest.raises(ValueError, match="on_missing must be 'raise' or 'skip'"):
        quality_cuts(t, on_missing="warn")
    with pytest.raises(TypeError, match="expected a table"):
        quality_cuts([1, 2, 3])
    # a table without any of the columns passes everything when every cut is skipped
    mask, counts = quality_cuts(Table({"x": [1.0, 2.0]}), on_missing="skip")
    assert mask.tolist() == [True, True] and len(counts) == 0


# -- abundance scales ----------------------------------------------------------------------
def test_abundance_round_trips_vectorised():
    a = np.array([[7.53, 7.0], [8.0, np.nan]])
    xh = to_xh(a, "Mg")
    np.testing.assert_allclose(xh[0], [0.0, -0.53], atol=1e-12)
    assert np.isnan(xh[1, 1])
    np.testing.assert_allclose(from_xh(xh, "mg"), a)
    a_fe = np.array([[7.45, 7.05], [7.2, 7.3]])
    xfe = to_xfe(a, a_fe, "MG")
    np.testing.assert_allclose(xfe[0], [0.0, -0.13], atol=1e-12)
    np.testing.assert_allclose(from_xfe(xfe, to_xh(a_fe, "Fe"), "Mg"), a)
    # one symbol per value, broadcast
    np.testing.assert_allclose(to_xh([1.05, 6.37], ["Li", "Al"]), [0.0, 0.0], atol=1e-12)
    assert isinstance(to_xh(3.05, "Li"), float)


def test_abundances_default_and_other_solar_tables():
    assert to_xh(SOLAR_ABUNDANCES["Eu"], "Eu") == 0.0  # the package's one solar table (Grevesse+ 2007)
    asplund09 = {"Li": 1.05, "Mg": 7.60, "Fe": 7.50}
    assert to_xh(7.60, "Mg", solar=asplund09) == 0.0
    assert to_xfe(7.60, 7.50, "Mg", solar=asplund09) == 0.0
    assert from_xfe(0.1, -0.2, "Mg", solar=asplund09) == pytest.approx(7.5)


def test_abundances_bad_input():
    with pytest.raises(KeyError, match="no solar abundance for element 'Xx'"):
        to_xh(1.0, "Xx")
    with pytest.raises(KeyError, match="no solar abundance for element 'Al'.*known: Li, Mg, Fe"):
        to_xh(1.0, "Al", solar={"Li": 1.05, "Mg": 7.6, "Fe": 7.5})
    with pytest.raises(TypeError, match="solar must be a mapping"):
        to_xh(1.0, "Mg", solar=[7.53])
    with pytest.raises(TypeError, match="element must be an element symbol"):
        to_xh(1.0, 12)
    with pytest.raises(TypeError, match="abundance must be numbers"):
        to_xh("7.5 dex", "Mg")
    with pytest.raises(ValueError, match=r"solar table's A\(Mg\) is nan"):
        to_xh(7.5, "Mg", solar={"Mg": float("nan")})
    with pytest.raises(ValueError, match="shape mismatch|broadcast"):
        to_xh([1.0, 2.0, 3.0], ["Li", "Mg"])
