#!/usr/bin/env python3
"""Run a container from Python with pyrunc's API, as root:

    python examples/run_container.py BUNDLE [--id ID] [--root DIR]

BUNDLE is an OCI bundle (config.json and its root filesystem; `pyrunc spec`
writes a config). The bundle is checked first, every problem printed with
its JSON path; then the container runs in the foreground, with this
script's stdin, stdout and stderr, and the script exits with its exit code.
"""

import argparse
import os
import sys

import pyrunc


def main() -> int:
    parser = argparse.ArgumentParser(description="run an OCI bundle with pyrunc")
    parser.add_argument("bundle")
    parser.add_argument("--id", default=f"example-{os.getpid()}")
    parser.add_argument("--root", default="/run/pyrunc")
    args = parser.parse_args()

    problems = pyrunc.check(args.bundle)
    if problems:
        for problem in problems:
            print(f"{args.bundle}: {problem.path or '(config)'}: {problem.message}", file=sys.stderr)
        return 1

    runtime = pyrunc.Runtime(root=args.root)
    try:
        code = runtime.run(args.id, args.bundle)  # waits, then deletes the container
    except pyrunc.PyruncError as err:
        print(f"{args.id}: {err}", file=sys.stderr)
        return 1
    print(f"container {args.id} exited with {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
