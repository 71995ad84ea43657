"""``python -m embedlab ...``: the same CLI as the ``embedlab`` command."""

import sys

from embedlab.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
