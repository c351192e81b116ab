import numpy as np
import pytest
from astropy.table import Table
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, train_test_split
from sklearn.utils.validation import check_is_fitted, validate_data

from skstellar import SpectralSet


def make_set(n=10, rng=None, error=False, per_star_grid=False):
    rng = rng or np.random.default_rng(0)
    w10 = np.linspace(5340.0, 5350.0, 201)
    w21 = np.linspace(8480.0, 8490.0, 101)
    f10 = rng.normal(1.0, 0.01, (n, w10.size))
    f21 = rng.normal(1.0, 0.01, (n, w21.size))
    if per_star_grid:
        w21 = w21 + rng.normal(0, 0.01, (n, 1))
    hr21 = (w21, f21, np.full_like(f21, 0.01)) if error else (w21, f21)
    meta = {"id": [f"s{i}" for i in range(n)], "rv": rng.normal(0, 30, n), "snr": np.full(n, 50.0)}
    return SpectralSet.from_arrays({"HR10": (w10, f10), "HR21": hr21}, meta=meta)


class MeanFluxRegressor(RegressorMixin, BaseEstimator):
    """A trivial estimator: y = a * mean flux + b, fitted by least squares."""

    def __init__(self, *, scale=1.0):
        self.scale = scale

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        m = X.mean(axis=1) * self.scale
        self.coef_ = np.polyfit(m, y, 1)
        return self

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return np.polyval(self.coef_, X.mean(axis=1) * self.scale)


def test_construction_shapes_and_types():
    s = make_set(7, error=True)
    assert len(s) == 7
    assert s.shape == (7, 302)
    assert s.setups == ("HR10", "HR21")
    assert s.flux("HR10").dtype == np.float32 and s.flux("HR10").shape == (7, 201)
    assert s.wavelength("HR21").shape == (101,)
    assert s.error("HR10") is None
    assert s.error("HR21").shape == (7, 101)
    assert isinstance(s.meta, Table) and s.meta["id"][3] == "s3"
    assert np.asarray(s).shape == (7, 302)


def test_big_endian_input_becomes_native_float32():
    w = np.arange(10.0)
    f = np.ones((2, 10), dtype=">f8")
    s = SpectralSet.from_arrays({"A": (w, f)})
    assert s.flux("A").dtype == np.dtype("float32") and s.flux("A").dtype.isnative
    assert list(s.meta["id"]) == ["0", "1"]


@pytest.mark.parametrize(
    "key, expected",
    [
        (3, ["s3"]),
        (-1, ["s9"]),
        (slice(2, 5), ["s2", "s3", "s4"]),
        (np.array([7, 1]), ["s7", "s1"]),
        ([0, 0], ["s0", "s0"]),
        (np.arange(10) % 4 == 0, ["s0", "s4", "s8"]),
    ],
)
def test_indexing_returns_new_set(key, expected):
    s = make_set(10, error=True, per_star_grid=True)
    sub = s[key]
    assert isinstance(sub, SpectralSet)
    assert list(sub.meta["id"]) == expected
    rows = [int(e[1:]) for e in expected]
    np.testing.assert_array_equal(sub.flux("HR10"), s.flux("HR10")[rows])
    np.testing.assert_array_equal(sub.wavelength("HR21"), s.wavelength("HR21")[rows])
    np.testing.assert_array_equal(sub.error("HR21"), s.error("HR21")[rows])


@pytest.mark.parametrize("key", [10, -11, np.array([0, 12]), [True, False]])
def test_indexing_out_of_range(key):
    s = make_set(10)
    with pytest.raises(IndexError, match="10 stars"):
        s[key]


def test_float_indices_rejected():
    with pytest.raises(IndexError, match="integers or a boolean mask"):
        make_set(4)[np.array([0.5, 1.0])]


def test_train_test_split():
    s = make_set(20)
    y = np.arange(20.0)
    s_tr, s_te, y_tr, y_te = train_test_split(s, y, test_size=0.25, random_state=0)
    assert isinstance(s_tr, SpectralSet) and len(s_tr) == 15 and len(s_te) == 5
    # rows stay aligned with their labels
    np.testing.assert_array_equal([int(i[1:]) for i in s_te.meta["id"]], y_te)


def test_kfold_cross_val_score_and_grid_search():
    rng = np.random.default_rng(1)
    s = make_set(30, rng)
    y = 3.0 * np.asarray(s).mean(axis=1) + 0.5
    folds = list(KFold(3).split(s))
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(30))
    scores = cross_val_score(MeanFluxRegressor(), s, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.999)
    gs = GridSearchCV(MeanFluxRegressor(), {"scale": [1.0, 2.0]}, cv=3).fit(s, y)
    assert gs.best_score_ > 0.999
    assert gs.predict(s[:4]).shape == (4,)


def test_concatenate():
    a, b = make_set(4, error=True), make_set(3, np.random.default_rng(5), error=True)
    with pytest.raises(ValueError, match=r"star id 's0' appears 2 times.*allow_duplicate_ids=True"):
        SpectralSet.concatenate([a, b])
    c = SpectralSet.concatenate([a, b], allow_duplicate_ids=True)
    assert len(c) == 7 and c.shape == (7, 302)
    np.testing.assert_array_equal(c.flux("HR21")[4:], b.flux("HR21"))
    assert c.wavelength("HR10").ndim == 1  # shared grid kept
    with pytest.raises(ValueError, match="setups"):
        SpectralSet.concatenate([a, SpectralSet.from_arrays({"HR10": (a.wavelength("HR10"), a.flux("HR10"))})])
    with pytest.raises(ValueError, match="at least one"):
        SpectralSet.concatenate([])


def test_concatenate_different_grids_becomes_per_star():
    a = make_set(2)
    b = SpectralSet.from_arrays(
        {"HR10": (a.wavelength("HR10") + 0.01, a.flux("HR10")), "HR21": (a.wavelength("HR21"), a.flux("HR21"))}
    )
    c = SpectralSet.concatenate([a, b], allow_duplicate_ids=True)
    assert c.wavelength("HR10").shape == (4, 201)
    np.testing.assert_allclose(c.wavelength("HR10")[3], a.wavelength("HR10") + 0.01)


def test_replace_shares_and_does_not_mutate():
    s = make_set(3)
    before = s.flux("HR10").copy()
    t = s.replace("HR10", flux=s.flux("HR10") * 2)
    np.testing.assert_array_equal(s.flux("HR10"), before)
    np.testing.assert_allclose(t.flux("HR10"), before * 2)
    assert t.flux("HR21") is s.flux("HR21")


def test_repr_is_readable():
    r = repr(make_set(3, error=True))
    assert r.startswith("<SpectralSet of 3 stars; HR10: 201 px 5340.00-5350.00 A")
    assert "HR21: 101 px" in r and "with errors" in r and "meta: id, rv, snr" in r


@pytest.mark.parametrize(
    "setups, message",
    [
        ({"HR10": (np.arange(5.0), np.ones((2, 4)))}, "setup 'HR10': wavelength has 5 pixels but flux has 4"),
        ({"HR10": (np.array([1.0, 2.0, 2.0, 3.0]), np.ones((2, 4)))},
         "setup 'HR10': wavelength is not strictly increasing at pixel 2"),
        ({"HR10": (np.array([1.0, np.nan, 2.0, 3.0]), np.ones((2, 4)))}, "setup 'HR10': wavelength is not finite"),
        ({"HR21": (np.arange(4.0), np.ones((2, 4)), np.ones((2, 3)))}, "setup 'HR21': error has shape"),
        ({"HR10": (np.arange(4.0), np.ones((2, 4))), "HR21": (np.arange(4.0), np.ones((3, 4)))}, "HR10: 2, HR21: 3"),
        ({}, "non-empty dict"),
        ({"HR10": (np.arange(4.0), np.ones((2, 0, 4)))}, "flux must be 2-D"),
    ],
)
def test_bad_arrays_raise_naming_setup(setups, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        SpectralSet.from_arrays(setups)


def test_per_star_grid_not_increasing_names_star():
    w = np.tile(np.arange(6.0), (3, 1))
    w[2, 4] = 2.5
    with pytest.raises(ValueError, match=r"star 2, pixel 4 \(3.0000 followed by 2.5000\)"):
        SpectralSet.from_arrays({"HR21": (w, np.ones((3, 6)))})


def test_meta_length_mismatch():
    with pytest.raises(ValueError, match="meta has 2 rows but the spectra have 3 stars"):
        SpectralSet.from_arrays({"A": (np.arange(4.0), np.ones((3, 4)))}, meta={"rv": [1.0, 2.0]})


def test_unknown_setup_and_iteration():
    s = make_set(2)
    with pytest.raises(KeyError, match="No setup 'HR15N'.*'HR10', 'HR21'"):
        s.flux("HR15N")
    with pytest.raises(TypeError, match="not iterable"):
        list(s)
    assert s.describe_star(1) == "star 1 (id 's1')"


# -- per-star scale on a shared grid (a Doppler correction without (n, p) grids) -------
def scaled_set(n=4, rng=None):
    s = make_set(n, rng, error=True)
    scale = 1.0 + np.linspace(-1e-3, 1e-3, n)
    return s.replace("HR21", scale=scale), scale


def test_scale_gives_effective_grids_without_storing_them():
    s, scale = scaled_set()
    d = s.setup_data("HR21")
    assert d.grid.shape == (101,)
    np.testing.assert_array_equal(d.scale, scale)
    assert not d.shared_grid and s.setup_data("HR10").shared_grid
    w = s.wavelength("HR21")
    assert w.shape == (4, 101)
    np.testing.assert_array_equal(w, d.grid[None, :] * scale[:, None])
    assert w[0, 0] == pytest.approx(8480.0 * (1 - 1e-3), rel=1e-15)
    r = repr(s)
    assert "HR21: 101 px 8471.52-8498.49 A (shared grid x per-star scale, with errors)" in r


def test_scale_follows_indexing_concatenate_and_with_setups():
    s, scale = scaled_set(4)
    sub = s[[3, 0]]
    np.testing.assert_array_equal(sub.setup_data("HR21").scale, scale[[3, 0]])
    np.testing.assert_array_equal(sub.wavelength("HR21"), s.wavelength("HR21")[[3, 0]])
    plain = make_set(2, error=True)
    c = SpectralSet.concatenate([s, plain], allow_duplicate_ids=True)
    d = c.setup_data("HR21")
    assert d.grid.ndim == 1  # still implicit: the unscaled stars get a factor of 1
    np.testing.assert_array_equal(d.scale, np.concatenate([scale, [1.0, 1.0]]))
    np.testing.assert_array_equal(c.wavelength("HR21")[4], plain.wavelength("HR21"))
    assert SpectralSet.concatenate([plain, plain], allow_duplicate_ids=True).setup_data("HR21").scale is None
    w = s.with_setups({k: s.setup_data(k) for k in s.setups})
    np.testing.assert_array_equal(w.setup_data("HR21").scale, scale)


def test_replace_keeps_or_drops_the_scale():
    s, scale = scaled_set(3)
    kept = s.replace("HR21", flux=s.flux("HR21") * 2)
    np.testing.assert_array_equal(kept.setup_data("HR21").scale, scale)
    dropped = s.replace("HR21", wavelength=s.wavelength("HR21"))
    assert dropped.setup_data("HR21").scale is None
    np.testing.assert_array_equal(dropped.wavelength("HR21"), s.wavelength("HR21"))


@pytest.mark.parametrize(
    "scale, message",
    [
        (np.ones(2), r"scale has shape \(2,\); expected one factor per star \(3,\)"),
        (np.array([1.0, np.nan, 1.0]), "scale must be finite and positive; star 1 has nan"),
        (np.array([1.0, 1.0, -1.0]), "scale must be finite and positive; star 2 has -1.0"),
    ],
)
def test_bad_scale_raises_naming_setup(scale, message):
    s = make_set(3)
    with pytest.raises(ValueError, match="setup 'HR21': " + message):
        s.replace("HR21", scale=scale)


def test_scale_needs_a_shared_grid():
    s = make_set(3, per_star_grid=True)
    with pytest.raises(ValueError, match="a per-star scale needs a shared 1-D wavelength grid"):
        s.replace("HR21", scale=np.ones(3))


@pytest.mark.parametrize("ids, match", [
    (["a", "b", "a"], r"star id 'a' appears 2 times"),
    (["a", None, "c"], r"star 1 has the placeholder id 'None'"),
    (["a", "", "c"], r"star 1 has the placeholder id ''"),
    (["a", "b", "NaN"], r"star 2 has the placeholder id 'NaN'"),
])
def test_from_arrays_refuses_duplicate_and_placeholder_ids(ids, match):
    wave = np.arange(10.0)
    with pytest.raises(ValueError, match=match):
        SpectralSet.from_arrays({"A": (wave, np.ones((3, 10)))}, meta={"id": np.array(ids, dtype=object)})
    if "appears" in match:
        s = SpectralSet.from_arrays({"A": (wave, np.ones((3, 10)))}, meta={"id": ids}, allow_duplicate_ids=True)
        assert s.ids.tolist() == ids
        assert len(s[[0, 0, 1]]) == 3  # resampling with repeats (bootstrap) is not "building"


def test_with_setups_checks_the_stars_agree():
    wave = np.arange(10.0)
    a = SpectralSet.from_arrays({"A": (wave, np.ones((3, 10)))}, meta={"id": ["x", "y", "z"]})
    b = SpectralSet.from_arrays({"B": (wave, np.zeros((3, 10)))}, meta={"id": ["x", "z", "y"]})
    with pytest.raises(ValueError, match=r"star 1 is 'z' there but 'y' here \(2 differ\)"):
        a.with_setups(b)
    assert a.with_setups(b[[0, 2, 1]]).setups == ("B",)
    with pytest.raises(ValueError, match=r"meta holds 2 stars; this SpectralSet holds 3"):
        a.with_setups({"A": a.setup_data("A")}, meta={"id": ["x", "y"]})
