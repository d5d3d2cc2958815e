#!/usr/bin/env python3
"""readme-snippet.py NAME [OLD=NEW ...]: print the code block that follows
`<!-- snippet: NAME ... -->` in the top README.md, with each OLD replaced by
NEW (the runtime's path for /usr/local/bin/pyrunc, ...). The e2e scripts
configure the engines with these blocks, so the README's snippets are the
ones tested. Exits 1 when there is no such snippet."""

import os
import sys

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


def snippet(text: str, name: str) -> str | None:
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("<!-- snippet: ") and line[len("<!-- snippet: "):].split()[0] == name:
            start = i + 1
            if not lines[start].startswith("```"):
                return None
            end = lines.index("```", start + 1)
            return "\n".join(lines[start + 1:end]) + "\n"
    return None


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    with open(README) as f:
        block = snippet(f.read(), argv[0])
    if block is None:
        print(f"readme-snippet.py: no snippet {argv[0]!r} in {README}", file=sys.stderr)
        return 1
    for pair in argv[1:]:
        old, _, new = pair.partition("=")
        if old not in block:
            print(f"readme-snippet.py: snippet {argv[0]!r} has no {old!r}", file=sys.stderr)
            return 1
        block = block.replace(old, new)
    sys.stdout.write(block)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
