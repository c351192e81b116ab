"""``skstellar convert``: FITS spectrum files (or folders of them) into one HDF5 spectral store."""

from __future__ import annotations


def add_parser(sub):
    from skstellar.predict._commands import convert_parser

    parser = sub.add_parser("convert", help="convert FITS spectrum files into an HDF5 spectral store",
                            description=__doc__.replace("``", ""))
    convert_parser(parser)
    parser.set_defaults(run=run)
    return parser


def run(args):
    from skstellar.predict import convert_main

    # one implementation of the command: the arguments are parsed again by its own parser
    return convert_main(args.argv[1:])
