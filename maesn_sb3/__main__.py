"""``python -m maesn_sb3``: the ``maesn-sb3`` command line."""

from maesn_sb3.cli import main

raise SystemExit(main())
