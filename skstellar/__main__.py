"""``python -m skstellar``: the command line of :mod:`skstellar.cli`."""

from skstellar.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
