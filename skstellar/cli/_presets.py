"""The preprocessing chains the commands build: the papers' presets or one from options."""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from skstellar.preprocessing import (
    RadialVelocityCorrector,
    Rebinner,
    SetupStitcher,
    SpectrumCleaner,
    giraffe_preprocessor,
    lithium_preprocessor,
)


def ambrosch2023():
    """Ambrosch et al. (2023): HR10 + HR21, 8669 pixels; uncovered bins padded with continuum."""
    return giraffe_preprocessor()


def nepal2023():
    """Nepal et al. (2023): HR15N alone, 0.075 A over 6455-6807.5 A (H alpha and Li I 6707.8 A)."""
    return lithium_preprocessor()


PRESETS = {"ambrosch2023": ambrosch2023, "nepal2023": nepal2023}


def custom(setups, steps, ranges, *, rv="rv"):
    """Clean -> (rest frame, when ``rv`` names a metadata column) -> rebin -> stitch ``setups``."""
    chain = [("clean", SpectrumCleaner(errors=False))]
    if rv is not None:
        chain.append(("rv", RadialVelocityCorrector(rv=rv)))
    chain += [
        ("rebin", Rebinner(step=steps, ranges=ranges, on_bad="flag", errors=False)),
        ("stitch", SetupStitcher(setups=list(setups), copy=False)),
    ]
    return Pipeline(chain)


def preprocessor(args, reader_rv: bool):
    """``(name, setups, pipeline)`` from ``--preset`` or ``--setups/--steps/--ranges``."""
    if args.setups:
        if args.preset:
            raise ValueError("give --preset or --setups, not both.")
        setups = list(args.setups)
        steps = _per_setup("--steps", args.steps, setups, float) if args.steps else None
        ranges = _per_setup("--ranges", args.ranges, setups, _range) if args.ranges else None
        return None, setups, custom(setups, steps, ranges, rv="rv" if reader_rv else None)
    name = args.preset or "ambrosch2023"
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    pipe = PRESETS[name]()
    return name, list(pipe.named_steps["stitch"].setups), pipe


def _per_setup(option, values, setups, convert):
    if len(values) == 1:
        values = values * len(setups)
    if len(values) != len(setups):
        raise ValueError(f"{option} gives {len(values)} values for {len(setups)} setups {setups}; "
                         "give one for all or one per setup.")
    out = {}
    for setup, value in zip(setups, values):
        try:
            out[setup] = convert(value)
        except ValueError:
            raise ValueError(f"{option}: {value!r} (setup {setup}) is not a valid value.") from None
    return out


def _range(text):
    lo, hi = (float(v) for v in str(text).split(":"))
    return lo, hi
