"""counts.py junit FILE... | conformance FILE: one line "passed=N failed=N skipped=N".

For the VM lane's jobs (tests/vm/guest/job.sh): pytest's --junitxml reports
(errors count as failures), or the output of conformance/run (its per-test
"ok", "FAIL", "skip" and "DEV" lines; a known deviation counts as skipped,
as the suite does not count it as a failure).
"""

import sys
import xml.etree.ElementTree as ET


def junit(paths):
    passed = failed = skipped = 0
    for path in paths:
        root = ET.parse(path).getroot()
        for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
            tests = int(suite.get("tests", 0))
            bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skip = int(suite.get("skipped", 0))
            passed += tests - bad - skip
            failed += bad
            skipped += skip
    return passed, failed, skipped


def conformance(path):
    marks = {"ok": 0, "FAIL": 0, "skip": 0, "DEV": 0}
    with open(path) as f:
        for line in f:
            word = line[:4].strip()
            if word in marks and line[4:5] == " " and line.rstrip().endswith("s)"):
                marks[word] += 1
    return marks["ok"], marks["FAIL"], marks["skip"] + marks["DEV"]


def main(argv):
    if len(argv) >= 2 and argv[0] == "junit":
        counts = junit(argv[1:])
    elif len(argv) == 2 and argv[0] == "conformance":
        counts = conformance(argv[1])
    else:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    print("passed=%d failed=%d skipped=%d" % counts)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
