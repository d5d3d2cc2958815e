"""`python -m pyrunc`: the same entry point as the `pyrunc` console script."""

from pyrunc.cli import run_and_exit

run_and_exit()
