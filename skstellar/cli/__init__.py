"""The command line: ``skstellar demo | train | predict | info | convert`` (also ``python -m skstellar``).

One module per command, each with ``add_parser(subparsers)`` and ``run(args)``; they use
the public API only. Exit codes: 0 success; 1 an error (one line on stderr naming the
file, column or setup); 2 a usage error (argparse); 3 ``predict`` wrote its table but some
rows have no labels (see their ``status``).
"""

import argparse
import os
import sys
import warnings

from . import convert, demo, info, predict, train
from .predict import EXIT_INCOMPLETE, EXIT_OK

__all__ = ["EXIT_ERROR", "EXIT_INCOMPLETE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_ERROR, EXIT_USAGE = 1, 2
_COMMANDS = (demo, train, predict, info, convert)


def build_parser():
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="skstellar",
        description="Stellar labels from spectra with CNN ensembles (Ambrosch et al. 2023).",
        epilog="Exit codes: 0 success; 1 error; 2 bad usage; 3 predict wrote rows without labels. "
               "Set SKSTELLAR_TRACEBACK=1 to see the traceback of an error.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv=None):
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    # TensorFlow's C++ start-up chatter (oneDNN notes, "no CUDA driver") is noise for a
    # command-line user; a user who wants it sets the variable.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.command != "demo":  # the demo checks its arguments first, then loads TensorFlow itself
        from ._quiet import load_tensorflow_quietly

        load_tensorflow_quietly()
    showwarning = warnings.showwarning
    warnings.showwarning = _one_line_warning
    try:
        # a command registers its handler as ``run`` (or ``func``, the argparse habit)
        return (getattr(args, "run", None) or args.func)(args)
    except KeyboardInterrupt:
        print(f"skstellar {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("SKSTELLAR_TRACEBACK"):
            raise
        # a user error is one line naming the thing; the type tells a bug from bad input
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"skstellar {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        warnings.showwarning = showwarning


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"skstellar: warning: {message}", file=sys.stderr if file is None else file)
