"""The command line on files: ``skstellar train`` then ``predict`` and ``info``, through subprocesses.

A small mock survey is written as Gaia-ESO GIRAFFE files with the faults of a real survey
directory: stars lacking a setup, a truncated file, a spectrum off the model's grid, and a
label table whose ids do not all match and whose labels are not all there.
"""

import json
import os
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
from astropy.table import Table

from skstellar.cli import EXIT_ERROR, EXIT_INCOMPLETE, build_parser, main
from skstellar.datasets import make_giraffe_survey
from skstellar.io import (
    load_model,
    read_ges_giraffe,
    read_predictions,
    save_model,
    write_ges_giraffe,
)
from skstellar.spectra import SpectralSet

TINY = ["--n-models", "1", "--n-keep", "1", "--max-epochs", "2", "--patience", "1",
        "--cnn-params", json.dumps({"filters": [2], "kernel_size": 5, "dense_units": [4], "bootstrap": False}),
        "--filter-params", json.dumps({"n_components": 5, "perplexity": 5,
                                       "tsne_params": {"n_iter": 50, "early_exaggeration_iter": 50}})]
N_STARS = 60


def _text(column):
    """A str column; an empty string reads back from ECSV as masked."""
    return np.ma.filled(np.ma.asarray(column), "").astype(str)


def _cli(*args, check=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    run = subprocess.run([sys.executable, "-m", "skstellar", *map(str, args)], capture_output=True, text=True,
                         timeout=600, env=env, check=False)
    if check is not None:
        assert run.returncode == check, run.stdout[-3000:] + run.stderr[-3000:]
    return run


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    root = tmp_path_factory.mktemp("survey")
    spectra, truth = make_giraffe_survey(N_STARS, snr=(30, 150), random_state=3)
    ids = [str(i) for i in spectra.ids]
    paths = write_ges_giraffe(spectra, root / "ges")
    lacking = ids[2:5]  # HR21 files removed
    for star in lacking:
        (root / "ges" / f"ges_giraffe_HR21_{star}.fits").unlink()
    truncated = root / "ges" / f"ges_giraffe_HR10_{ids[6]}.fits"
    truncated.write_bytes(truncated.read_bytes()[:4000])
    # a star whose HR10 spectrum lies 400 A red of the setup: nothing of it maps onto the model's grid
    off = spectra[[7]]
    shifted = SpectralSet.from_arrays(
        {"HR10": (off.wavelength("HR10") + 400.0, off.flux("HR10"), off.error("HR10")),
         "HR21": (off.wavelength("HR21"), off.flux("HR21"), off.error("HR21"))},
        meta={"id": ["off-grid-star"], "rv": off.meta["rv"], "snr": off.meta["snr"]})
    write_ges_giraffe(shifted, root / "extra")
    # labels: stars 8 and 9 unlisted, one row without spectra, some labels missing
    table = Table({"CNAME": truth["id"], "TEFF": truth["teff"], "LOGG": truth["logg"], "FEH": truth["feh"]},
                  masked=True)
    table["TEFF"].unit = "K"
    table.remove_rows([8, 9])
    table.add_row(["no-such-star", 5000.0, 4.0, 0.0])
    table["FEH"].mask[[12, 13]] = True
    table["LOGG"].mask[14] = True
    table.write(root / "labels.ecsv")
    return {"root": root, "ids": ids, "lacking": lacking, "truncated": truncated, "paths": paths,
            "unlabelled": ids[8:10]}


@pytest.fixture(scope="module")
def trained(survey):
    root = survey["root"]
    model = root / "model.joblib"
    run = _cli("train", "--spectra", root / "ges", "--labels", root / "labels.ecsv", "--id-column", "CNAME",
               "--label-columns", "TEFF", "LOGG", "FEH", "--out", model, "--on-unmatched", "skip", *TINY, check=0)
    return {"model": model, "run": run}


def test_train_reports_what_it_left_out_and_the_validation(survey, trained):
    out = trained["run"].stdout
    assert f"{2 * N_STARS - 3} spectrum files" in out
    assert "skipped 1 unreadable file(s)" in out and survey["truncated"].name in out
    assert "skipped 4 star(s) lacking a setup" in out  # three without HR21, one whose HR10 file is cut
    assert "2 spectra have no row" in out and "1 rows of" in out and "no-such-star" in out
    n_used = N_STARS - 4 - 2
    assert f"read {n_used} stars" in out
    for label in ("TEFF", "LOGG", "FEH"):
        assert f"  {label} " in out and "bias" in out and "scatter" in out
    skipped = read_predictions(trained["model"].with_name("model.joblib.skipped.ecsv"))
    reasons = dict(zip(_text(skipped["id"]), skipped["reason"]))
    assert {*survey["lacking"], *survey["unlabelled"], "no-such-star"} <= set(reasons)
    assert reasons["no-such-star"] == "no spectrum" and reasons[survey["unlabelled"][0]] == "no labels"
    assert any(survey["truncated"].name in f for f in _text(skipped["file"]))


def test_predict_gives_every_star_one_row_and_matches_the_python_api(survey, trained, tmp_path):
    out = tmp_path / "pred.ecsv"
    run = _cli("predict", "--model", trained["model"], "--spectra", survey["root"] / "ges",
               str(survey["root"] / "extra" / "*.fits"), "--out", out, "--chunk-size", "30", check=EXIT_INCOMPLETE)
    table = read_predictions(out)
    table["id"] = _text(table["id"])
    ids = survey["ids"]
    # every star once, in input order (files sorted: HR10 of every star, then HR21), then the extra star;
    # the truncated file is its own row with no id
    star_rows = table[table["id"] != ""]
    assert len(table) == N_STARS + 1 + 1 and len(set(star_rows["id"])) == len(star_rows)
    assert set(star_rows["id"]) == {*ids, "off-grid-star"}
    status = dict(zip(table["id"], table["status"]))
    for star in survey["lacking"]:
        assert status[star] == "missing setup: HR21"
    assert status[ids[6]] == "missing setup: HR10"  # its HR10 file is the truncated one
    assert status["off-grid-star"] == "no overlap with the model's grid: HR10"
    bad_file = table[table["id"] == ""]
    assert len(bad_file) == 1 and bad_file["status"][0].startswith("unreadable file: ")
    assert bad_file["files"][0] == str(survey["truncated"])
    # Every star read whole is predicted, unlabelled ones too. The filter may flag one of them (its
    # contamination is 1 % of training-like spectra): flagged, it keeps its labels.
    predicted = np.isin(table["status"], ["ok", "unlike the training set"])
    assert predicted.sum() == N_STARS - 4
    assert np.isfinite(table["TEFF"][predicted]).all() and np.isnan(table["TEFF"][~predicted]).all()
    n_unlike = int((table["status"] == "unlike the training set").sum())
    assert n_unlike <= 2 and (table["training_like"] == (table["status"] == "ok"))[predicted].all()
    summary = next(line for line in run.stdout.splitlines() if line.startswith(f"{len(table)} rows: "))
    parts = {part.strip() for part in summary.split(": ", 1)[1].split(",")}
    expected = {f"{N_STARS - 4 - n_unlike} ok", "4 missing setup", "1 unreadable file", "1 no overlap"}
    assert all(any(part.startswith(e) for part in parts) for e in expected), summary
    assert len(parts) == len(expected) + (n_unlike > 0), summary
    assert (f"{n_unlike} unlike the training set" in parts) == (n_unlike > 0)

    # the same model through the Python API, on the complete stars read in one go
    model = load_model(trained["model"])
    complete = [i for i in ids if status[i] in ("ok", "unlike the training set")]
    files = [survey["root"] / "ges" / f"ges_giraffe_{s}_{i}.fits" for i in complete for s in ("HR10", "HR21")]
    expected = model.predict(read_ges_giraffe(files))
    got = np.column_stack([np.asarray(table[c][predicted], dtype=float) for c in ("TEFF", "LOGG", "FEH")])
    assert list(table["id"][predicted]) == complete
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)  # float32 networks, other batches
    assert table["training_like"].dtype == bool


def test_predict_writes_fits_with_empty_rows(survey, trained, tmp_path):
    out = tmp_path / "pred.fits"
    spectra = [survey["root"] / "ges" / f"ges_giraffe_{s}_{i}.fits" for i in survey["ids"][:6] for s in ("HR10", "HR21")
               if (survey["root"] / "ges" / f"ges_giraffe_{s}_{i}.fits").exists()]
    assert main(["predict", "--model", str(trained["model"]), "--spectra", *map(str, spectra),
                 "--out", str(out)]) == EXIT_INCOMPLETE
    table = read_predictions(out)
    assert list(table["status"]) == ["ok", "ok", *["missing setup: HR21"] * 3, "ok"]
    feh = np.ma.filled(np.ma.asarray(table["FEH"], dtype=float), np.nan)  # FITS NaN reads back masked
    assert np.isnan(feh[2:5]).all() and np.isfinite(feh[[0, 1, 5]]).all()


def test_info_shows_the_manifest(trained, capsys):
    assert main(["info", str(trained["model"])]) == 0
    text = capsys.readouterr().out
    assert "preset: ambrosch2023" in text and "setup HR10: 4168 bins of 0.06 A" in text
    assert "label TEFF [K]" in text and "cnn: skstellar.models.CNNLabelRegressor" in text
    assert main(["info", "--json", str(trained["model"])]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["setups"] == ["HR10", "HR21"] and manifest["n_features"] == 8669
    assert set(manifest["versions"]) >= {"skstellar", "scikit-learn", "tensorflow", "keras", "numpy"}
    assert manifest["training"]["n_stars"] == N_STARS - 6 and len(manifest["grid_sha256"]) == 64
    assert manifest["training"]["labels"]["FEH"]["n"] == N_STARS - 6 - 2
    assert manifest["filter"]["similarity"]["perplexity"] == 5
    assert manifest["command"].startswith("skstellar train --spectra ") and manifest["reader"]["format"] == "ges"


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(commands) == {"demo", "train", "predict", "info", "convert"}
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help and action.help.strip(), (name, action.option_strings or action.dest)
    run = _cli("predict", "--help", check=0)
    assert "--chunk-size" in run.stdout and "status" in run.stdout


@pytest.mark.parametrize("case", ["spectra", "labels", "column", "preset", "model", "info"])
def test_bad_input_is_one_line_naming_the_thing(case, survey, tmp_path, capsys):
    root = survey["root"]
    not_a_model = tmp_path / "notes.joblib"
    not_a_model.write_text("not a model\n")
    common = ["--labels", str(root / "labels.ecsv"), "--label-columns", "TEFF", "--out", str(tmp_path / "m.joblib")]
    argv, named = {
        "spectra": (["train", "--spectra", str(tmp_path / "nowhere"), *common], "nowhere"),
        "labels": (["train", "--spectra", str(root / "ges"), "--labels", str(tmp_path / "none.csv"),
                    "--label-columns", "TEFF", "--out", "m.joblib"], "none.csv"),
        "column": (["train", "--spectra", str(root / "ges"), *common, "--id-column", "STAR_ID"], "'STAR_ID'"),
        "preset": (["train", "--spectra", str(root / "ges"), *common, "--preset", "gaia2030"], "'gaia2030'"),
        "model": (["predict", "--model", str(not_a_model), "--spectra", str(root / "ges"),
                   "--out", str(tmp_path / "p.csv")], "notes.joblib"),
        "info": (["info", str(not_a_model)], "notes.joblib"),
    }[case]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"skstellar {argv[0]}: error: ") and named in err


def test_errors_through_a_subprocess_have_no_traceback(tmp_path):
    run = _cli("info", tmp_path / "missing.joblib", check=EXIT_ERROR)
    assert run.stderr.strip() == f"skstellar info: error: {tmp_path / 'missing.joblib'}: no such model file."


def test_ges_files_read_back_identical(tmp_path):
    spectra, _ = make_giraffe_survey(4, setups=("HR10", "HR15N", "HR21"), random_state=0)
    error = spectra.error("HR10").copy()
    error[0, :3] = [np.inf, np.nan, 0.5]
    spectra = SpectralSet.from_arrays(
        {s: (spectra.wavelength(s), spectra.flux(s), error if s == "HR10" else spectra.error(s))
         for s in spectra.setups}, meta=spectra.meta)
    back = read_ges_giraffe(write_ges_giraffe(spectra, tmp_path))
    assert back.setups == spectra.setups and list(back.ids) == list(spectra.ids)
    for s in spectra.setups:
        assert np.array_equal(back.wavelength(s), spectra.wavelength(s))
        assert np.array_equal(back.flux(s), spectra.flux(s))
        np.testing.assert_allclose(back.error(s), spectra.error(s), rtol=2e-7)
    assert back.error("HR10")[0, 0] == np.inf and np.isnan(back.error("HR10")[0, 1])
    # the reader averages the setups' VEL: equal values, up to the rounding of a mean
    np.testing.assert_allclose(back.meta["rv"], spectra.meta["rv"], rtol=1e-15)
    np.testing.assert_array_equal(back.meta["snr"], spectra.meta["snr"])
    with pytest.raises(FileExistsError, match="overwrite"):
        write_ges_giraffe(spectra, tmp_path)


def test_ges_writer_refuses_a_nonlinear_grid(tmp_path):
    wave = np.geomspace(5000.0, 5100.0, 50)
    s = SpectralSet.from_arrays({"HR10": (wave, np.ones((1, 50)))}, meta={"id": ["a"]})
    with pytest.raises(ValueError, match="star 'a', setup 'HR10': the wavelength grid is not linear"):
        write_ges_giraffe(s, tmp_path)


def test_loading_a_model_of_another_version_warns_naming_both(tmp_path):
    from sklearn.linear_model import Ridge

    import skstellar

    path = tmp_path / "m.joblib"
    save_model(Ridge().fit([[0.0], [1.0]], [0.0, 1.0]), path)
    content = joblib.load(path)
    content["manifest"]["versions"]["skstellar"] = "0.0.1"
    joblib.dump(content, path)
    expected = f"saved by skstellar 0.0.1 and is loaded by skstellar {skstellar.__version__}"
    with pytest.warns(UserWarning, match=expected):
        load_model(path)
    joblib.dump(Ridge(), tmp_path / "plain.joblib")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, manifest = load_model(tmp_path / "plain.joblib", with_manifest=True)
    assert manifest is None and isinstance(model, Ridge)


def test_generic_fits_files_are_indexed_by_file_name(tmp_path):
    from astropy.io import fits

    from skstellar.cli._files import SpectrumReader, expand_paths, index_files

    for name, rv in (("star_a", 12.0), ("star_b", -3.0)):
        hdu = fits.PrimaryHDU(np.ones(200, dtype=">f4"))
        hdu.header.update(CRVAL1=8475.0, CDELT1=0.05, CRPIX1=1.0, VRAD=rv)
        hdu.writeto(tmp_path / f"{name}.fits")
    (tmp_path / "broken.fits").write_text("SIMPLE = nonsense")
    reader = SpectrumReader(format="fits", setup="HR21", rv_keyword="VRAD")
    index = index_files(reader, expand_paths([str(tmp_path / "*.fits")]), progress=False)
    assert list(index.stars) == ["star_a", "star_b"] and list(index.stars["star_a"]) == ["HR21"]
    assert [p.name for p in index.bad] == ["broken.fits"]
    assert index.order == [("file", tmp_path / "broken.fits"), ("star", "star_a"), ("star", "star_b")]
    spectra = reader.read(index.files(["star_b", "star_a"], ["HR21"]))
    assert list(spectra.ids) == ["star_b", "star_a"] and list(spectra.meta["rv"]) == [-3.0, 12.0]
    with pytest.raises(FileNotFoundError, match="no file matches"):
        expand_paths([str(tmp_path / "*.fit")])


def test_setups_option_builds_a_chain_for_another_instrument():
    from argparse import Namespace

    from skstellar.cli._presets import preprocessor

    args = Namespace(preset=None, setups=["B", "R"], steps=["0.1"], ranges=["4800:4900", "6500:6600"])
    name, setups, pipe = preprocessor(args, reader_rv=False)
    assert name is None and setups == ["B", "R"] and "rv" not in pipe.named_steps
    assert pipe.named_steps["rebin"].ranges == {"B": (4800.0, 4900.0), "R": (6500.0, 6600.0)}
    assert pipe.named_steps["rebin"].step == {"B": 0.1, "R": 0.1}
    name, setups, _ = preprocessor(Namespace(preset="nepal2023", setups=None), reader_rv=True)
    assert (name, setups) == ("nepal2023", ["HR15N"])
    args.ranges = ["4800-4900"]
    with pytest.raises(ValueError, match="--ranges: '4800-4900' \\(setup B\\)"):
        preprocessor(args, reader_rv=False)


def test_info_warns_of_another_version_in_one_line(tmp_path, capsys):
    from sklearn.linear_model import Ridge

    path = tmp_path / "m.joblib"
    save_model(Ridge().fit([[0.0], [1.0]], [0.0, 1.0]), path)
    content = joblib.load(path)
    content["manifest"]["versions"]["skstellar"] = "0.0.1"
    joblib.dump(content, path)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        assert main(["info", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("skstellar: warning: ") and "saved by skstellar 0.0.1" in err and err.count("\n") == 1


def test_predict_with_no_usable_star_still_writes_every_row(survey, trained, tmp_path):
    out = tmp_path / "none.ecsv"
    hr10 = [survey["root"] / "ges" / f"ges_giraffe_HR10_{i}.fits" for i in survey["ids"][:3]]
    assert main(["predict", "--model", str(trained["model"]), "--spectra", *map(str, hr10),
                 "--out", str(out)]) == EXIT_INCOMPLETE
    table = read_predictions(out)
    assert list(table["status"]) == ["missing setup: HR21"] * 3
    assert table.colnames[:4] == ["id", "status", "TEFF", "e_TEFF"]


def test_train_quality_cuts_leave_out_the_rejected_stars_and_say_which_cut(survey, tmp_path, capsys):
    root = survey["root"]
    labels = Table.read(root / "labels.ecsv")
    n = len(labels)
    labels["SNR"] = np.full(n, 80.0)
    labels["E_TEFF"] = np.full(n, 50.0)
    labels["SNR"][[0, 1, 15]] = [12.0, 29.9, np.nan]  # below the S/N cut; an unknown S/N fails it too
    labels["E_TEFF"][[1, 16]] = 250.0
    labels.write(tmp_path / "labels.ecsv")
    model = tmp_path / "m.joblib"
    argv = ["train", "--spectra", str(root / "ges"), "--labels", str(tmp_path / "labels.ecsv"),
            "--label-columns", "TEFF", "LOGG", "FEH", "--out", str(model), "--on-unmatched", "skip", "--no-filter",
            "--quality-cuts", "--quality-columns", "snr=SNR", "e_teff=E_TEFF",
            "--quality-params", '{"on_missing": "skip"}', *TINY[:-2]]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"quality cuts: {n - 4} of {n} rows of" in out
    assert "snr" in out and "rejects      3 (only this cut: 2)" in out
    assert "e_teff" in out and "rejects      2 (only this cut: 1)" in out
    assert "skipped 4 star(s) with spectra that fail the quality cuts" in out
    assert f"read {N_STARS - 4 - 2 - 4} stars" in out
    skipped = read_predictions(model.with_name("m.joblib.skipped.ecsv"))
    reasons = dict(zip(_text(skipped["id"]), skipped["reason"]))
    for row in (0, 1, 15, 16):
        assert reasons[labels["CNAME"][row]] == "fails the quality cuts"
    # a cut whose column the table lacks is one line naming it, unless told to skip it
    argv = [a for a in argv if a not in ('{"on_missing": "skip"}', "--quality-params")]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "e_logg" in err and "--quality-columns" in err


def test_galah_format_trains_and_predicts_on_the_real_files(shared_data, tmp_path, capsys):
    from astropy.io import fits

    galah = shared_data / "spectra" / "galah"
    firsts = sorted(galah.glob("2*1.fits"))
    teff = [fits.getheader(p, 1)["TEFF_R"] for p in firsts]
    Table({"sobject_id": [p.name[:-6] for p in firsts], "teff": teff}).write(tmp_path / "labels.ecsv")
    model = tmp_path / "m.joblib"
    assert main(["train", "--format", "galah", "--spectra", str(galah), "--labels", str(tmp_path / "labels.ecsv"),
                 "--id-column", "sobject_id", "--label-columns", "teff", "--out", str(model), "--no-filter",
                 "--setups", "CCD1", "CCD2", "CCD3", "CCD4", "--steps", "0.5",
                 "--ranges", "4750:4850", "5700:5800", "6600:6700", "7700:7800",
                 "--validation-fraction", "0.5", *TINY[:-2]]) == 0
    out = capsys.readouterr().out
    # the release's summary table beside the spectra is skipped, saying why; the 16 files make 4 stars
    assert "skipped 1 unreadable file(s)" in out and "does not end in a camera digit" in out
    assert "read 4 stars" in out
    assert load_model(model, with_manifest=True)[1]["reader"]["format"] == "galah"
    # predict takes the format from the model; a star lacking a camera still gets its row
    spectra = [p for p in sorted(galah.glob("2*.fits")) if p.name != "2101150001010023.fits"]
    assert main(["predict", "--model", str(model), "--spectra", *map(str, spectra),
                 "--out", str(tmp_path / "p.ecsv")]) == EXIT_INCOMPLETE
    table = read_predictions(tmp_path / "p.ecsv")
    assert _text(table["id"]).tolist() == [p.name[:-6] for p in firsts]
    assert list(table["status"] == "ok") == [True, False, True, True] and "CCD3" in table["status"][1]
    assert np.isfinite(table["teff"][[0, 2, 3]]).all() and np.isnan(table["teff"][1])
