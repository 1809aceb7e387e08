"""``python -m maesn_sb3.benchmark``: the adaptation benchmark (``maesn-sb3 benchmark``)."""

import sys

from maesn_sb3.benchmark.run import main

if __name__ == "__main__":
    sys.exit(main(prog="maesn-sb3 benchmark"))
