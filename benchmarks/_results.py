"""The machine-readable output every benchmark script offers: ``--json PATH``.

``benchmarks/run_all.py`` runs the scripts with ``--json`` and builds ``benchmarks/RESULTS.md``
from these files, so no figure is parsed back out of printed text. Each file holds the script's
name, its command-line arguments and a flat dict of figures; a figure's name carries its unit
(``stars_per_s``, ``peak_rss_mb``, ``wall_s``, ``scatter_teff``...).
"""

import json
import resource
import sys
from pathlib import Path


def add_json_argument(parser):
    parser.add_argument("--json", metavar="PATH", default=None,
                        help="also write the measured figures to PATH as JSON (benchmarks/run_all.py reads it)")


def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_json(path, figures, **context):
    """Write ``figures`` (a flat dict of numbers or short strings) and the run's context to ``path``."""
    if path is None:
        return
    record = {"script": Path(sys.argv[0]).name, "argv": sys.argv[1:], "figures": figures, **context}
    Path(path).write_text(json.dumps(record, indent=1, default=float) + "\n")
