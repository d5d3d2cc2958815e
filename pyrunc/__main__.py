"""`python -m pyrunc`: the same entry point as the `pyrunc` console script."""

from pyrunc.cli import main

raise SystemExit(main())
