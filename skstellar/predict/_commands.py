"""The command line of store conversion: ``skstellar convert`` (wired by :mod:`skstellar.cli`)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["convert_main", "convert_parser"]


def convert_parser(parser=None):
    """The arguments of ``skstellar convert`` (added to ``parser`` when given, e.g. a sub-parser)."""
    parser = parser or argparse.ArgumentParser(
        prog="skstellar convert",
        description="Convert FITS spectrum files (or folders of them) into one HDF5 spectral store, "
        "chunk by chunk.",
    )
    parser.add_argument("paths", nargs="+", help="FITS files or folders of FITS files")
    parser.add_argument("-o", "--output", required=True, help="the store to write (.h5)")
    parser.add_argument("--reader", choices=("ges", "fits"), default="ges",
                        help="ges: Gaia-ESO GIRAFFE files, setups matched by star (default); "
                        "fits: generic 1-D FITS spectra of one setup (give --setup)")
    parser.add_argument("--setup", help="setup name of the files (--reader fits)")
    parser.add_argument("--chunk-size", type=int, default=1000, help="files read per chunk (default 1000)")
    parser.add_argument("--on-bad", choices=("raise", "drop"), default="raise",
                        help="ges: a star lacking a setup within its chunk: fail (default) or drop it")
    parser.add_argument("--jobs", type=int, default=None, help="processes reading files (default: this one)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def convert_main(argv=None):
    """Run ``skstellar convert`` with the arguments ``argv``; return the exit status (0: success).

    Errors in the input (a missing file, a file that is not a spectrum, an existing store)
    are printed as one line naming the file, with exit status 1.
    """
    from ..io import convert_to_store

    parser = convert_parser()
    args = parser.parse_args(argv)
    kwargs = {}
    if args.reader == "fits":
        if not args.setup:
            parser.error("--reader fits needs --setup NAME (the setup of the files)")
        kwargs["setup"] = args.setup
    elif args.setup:
        parser.error("--setup is only for --reader fits; GES files name their setup in the header")
    try:
        store = convert_to_store(args.paths, args.output, reader=args.reader, chunk_size=args.chunk_size,
                                 overwrite=args.overwrite, on_bad=args.on_bad, n_jobs=args.jobs,
                                 progress=not args.quiet, **kwargs)
    except (OSError, ValueError) as exc:
        print(f"skstellar convert: error: {exc}", file=sys.stderr)
        return 1
    with store:
        print(f"{store.path}: {len(store)} stars, setups {', '.join(store.setups)}, "
              f"{store.nbytes_on_disk / 1e6:.1f} MB")
    return 0
