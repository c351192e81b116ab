"""``skstellar info``: what a model file is -- its manifest, pipeline steps and their parameters."""

from __future__ import annotations

import json


def add_parser(sub):
    parser = sub.add_parser("info", help="show a model's manifest, steps and parameters",
                            description=__doc__.replace("``", ""))
    parser.add_argument("model", metavar="MODEL", help="a model file written by skstellar train")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON (for scripts)")
    parser.set_defaults(run=run)
    return parser


def _value(value):
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def run(args):
    from skstellar.io import load_model, model_manifest

    model, manifest = load_model(args.model, with_manifest=True)
    saved = manifest is not None
    if not saved:
        manifest = model_manifest(model)
    if args.json:
        print(json.dumps(manifest, indent=2))
        return 0
    print(f"model {args.model}" + ("" if saved else " (saved without a manifest: what the pipeline shows)"))
    if saved:
        print(f"  saved {manifest.get('date')} by: {manifest.get('command')}")
    print("  versions: " + ", ".join(f"{k} {v}" for k, v in manifest["versions"].items()))
    if manifest.get("preset"):
        print(f"  preset: {manifest['preset']}")
    if manifest.get("reader"):
        print("  spectra: " + ", ".join(f"{k}={v}" for k, v in manifest["reader"].items() if v is not None))
    for setup, grid in manifest.get("grids", {}).items():
        print(f"  setup {setup}: {grid['n']} bins of {grid['step']} A, {grid['first']}-{grid['last']} A")
    print(f"  grid sha256: {manifest.get('grid_sha256')}; {manifest.get('n_features')} features")
    training = manifest.get("training") or {}
    ranges = training.get("labels", {})
    validation = manifest.get("validation", {})
    if training:
        print(f"  training: {training['n_stars']} stars"
              + (f" ({manifest['n_train']} fitted, {manifest['n_validation']} validation)"
                 if "n_train" in manifest else ""))
    for label in manifest.get("labels", []):
        name, unit = label["name"], label["unit"]
        line = f"  label {name}" + (f" [{unit}]" if unit else "")
        if name in ranges:
            r = ranges[name]
            line += f": {r['n']} stars, {r['min']:.6g} to {r['max']:.6g}" if r["n"] else ": no values"
        if name in validation:
            v = validation[name]
            line += f"; validation bias {v['bias']:+.4g}, scatter {v['scatter']:.4g}"
        print(line)
    print("  steps:")
    for step in manifest["steps"]:
        print(f"    {step['name']}: {step['class']}")
        for key, value in step["params"].items():
            print(f"      {key} = {_value(value)}")
    return 0
