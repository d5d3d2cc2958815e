"""OCI runtime conformance suite (black-box, from the runtime-spec text)."""

from __future__ import annotations

import os
import shutil
import sys

# Importing the test modules registers their tests, in this order.
from . import (  # noqa: F401
    cgroups,
    devices,
    errors,
    harness,
    hooks,
    lifecycle,
    mounts,
    namespaces,
    paths,
    process,
    state,
)

USAGE = ("usage: conformance/run RUNTIME [--only AREA[,AREA...]] [--test NAME[,NAME...]] [--list] [-v]\n"
         "                       [--known-deviation NAME[,NAME...]]  (reported, not counted as failures)")


def main(argv: list[str]) -> int:
    only, names, verbose, listing, runtime, deviations = [], [], False, False, None, []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--only" and args:
            only += args.pop(0).split(",")
        elif arg == "--known-deviation" and args:
            deviations += args.pop(0).split(",")
        elif arg == "--test" and args:
            names += args.pop(0).split(",")
        elif arg in ("-v", "--verbose"):
            verbose = True
        elif arg == "--list":
            listing = True
        elif arg in ("-h", "--help"):
            print(USAGE)
            print("areas: " + " ".join(harness.AREAS))
            return 0
        elif runtime is None and not arg.startswith("-"):
            runtime = arg
        else:
            print(USAGE, file=sys.stderr)
            return 2
    unknown = [a for a in only if a not in harness.AREAS]
    if unknown:
        print(f"conformance: unknown area {', '.join(unknown)}; areas: {' '.join(harness.AREAS)}", file=sys.stderr)
        return 2
    if listing:
        for case in harness.REGISTRY:
            if not only or case.area in only:
                print(f"{case.area:<13} {case.name:<48} {case.spec}")
        return 0
    if runtime is None:
        print(USAGE, file=sys.stderr)
        return 2
    binary = shutil.which(runtime) or runtime
    if not os.access(binary, os.X_OK):
        print(f"conformance: {runtime}: not an executable", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("conformance: must run as root (it creates real containers)", file=sys.stderr)
        return 2
    unknown = [d for d in deviations if d not in {c.name for c in harness.REGISTRY}]
    if unknown:
        print(f"conformance: --known-deviation: no test named {', '.join(unknown)}", file=sys.stderr)
        return 2
    return harness.run_suite(os.path.abspath(binary), only, names, verbose, deviations)
