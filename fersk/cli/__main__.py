"""``python -m fersk.cli``: the ``fersk`` command (see :func:`fersk.cli.main`)."""

import sys

from fersk.cli import main

if __name__ == "__main__":
    sys.exit(main())
