"""``python -m maesn_sb3.cli``, the same as ``maesn-sb3``."""

from maesn_sb3.cli import main

raise SystemExit(main())
