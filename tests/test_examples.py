"""Every gallery example (examples/plot_*.py) runs on its own and draws at least one figure.

Each runs in a fresh process, as a user would run it, with the Agg backend. The examples that
train networks are marked ``slow`` (about a minute each on 2 cores): ``-m "not slow"`` leaves
them out.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
SLOW = {"plot_ensemble_uncertainty", "plot_persistence", "plot_command_line", "plot_saliency"}

# Deprecations raised by the example's own calls fail it (the gallery should show current APIs).
RUNNER = """
import runpy, sys, warnings
import matplotlib.pyplot as plt
warnings.filterwarnings("error", category=DeprecationWarning, module="__main__")
warnings.filterwarnings("error", category=FutureWarning, module="__main__")
runpy.run_path(sys.argv[1], run_name="__main__")
print("figures:", len(plt.get_fignums()))
"""


def test_there_are_examples():
    assert EXAMPLES, "examples/ holds no plot_*.py script"


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW else []) for p in EXAMPLES],
)
def test_example_runs(path, tmp_path):
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{path.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    figures = int(done.stdout.rsplit("figures:", 1)[1])
    assert figures >= 1, f"{path.name} drew no figure"
    # The intro docstring is the gallery page's text: a title line underlined with '='.
    lines = path.read_text().split('"""', 2)[1].strip().splitlines()
    assert len(lines) > 3 and set(lines[1]) == {"="}, f"{path.name}: the docstring needs a title and an intro"
