"""Plain-Python equivalents of the `pattern`s in oci-schemas/, for the generated
validator (pyrunc/spec/_validator.py), which must not pay ~4 ms to import `re`.

PATTERNS maps each pattern string, exactly as the schema spells it, to a
function `f(s) -> bool` that returns `re.search(pattern, s) is not None` for
every str `s`: that is what jsonschema checks. tests/unit/test_fast_validator.py
compares each function with `re.search` on a large corpus of strings.

Python's `re` semantics that matter here (not ECMA 262's):
- `^` without MULTILINE matches only at the start of the string;
- `$` without MULTILINE matches at the end AND just before a final "\\n", so
  "2MB\\n" matches "^[0-9]+[KMGTPE]?B$" (none of our patterns can consume a
  newline themselves, so dropping one final "\\n" and then matching the whole
  string is exact);
- `[0-9]` and `[A-Za-z]` are ASCII ranges: "١" (Arabic-Indic one) or "²" are not
  digits here, which is why the checks below use `isascii()` next to `isdigit()`.

A pattern missing from PATTERNS still works: the generator then emits a lazily
compiled `re` search for it. Imports nothing.
"""

_DIGITS = "0123456789"
_ALNUM_HYPHEN = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-"


def _chomp(s):
    """`$` also matches before one final newline: drop it."""
    return s[:-1] if s[-1:] == "\n" else s


def _number(s):
    """[0-9]+ (ASCII digits only, at least one)."""
    return s != "" and not s.strip(_DIGITS)


def absolute_path(s):
    """^/"""
    return s.startswith("/")


def env_variable(s):
    """^[^=]+=  — a non-empty run of non-'=' characters (newlines included),
    then '=': the first '=' is not the first character."""
    return s.find("=") > 0


def device_access(s):
    """^[rwm]*$"""
    return not _chomp(s).strip("rwm")


def page_size(s):
    """^[0-9]+[KMGTPE]?B$"""
    s = _chomp(s)
    if s[-1:] != "B":
        return False
    s = s[:-1]
    if s[-1:] in ("K", "M", "G", "T", "P", "E"):
        s = s[:-1]
    return _number(s)


def mem_bw_schema(s):
    """^MB:[^\\n]*$"""
    s = _chomp(s)
    return s.startswith("MB:") and "\n" not in s


def _cpu_range(item):
    """[0-9]+(-[0-9]+(:[0-9]+/[0-9]+)?)?"""
    first, dash, rest = item.partition("-")
    if not dash:
        return _number(first)
    last, colon, stride = rest.partition(":")
    if not colon:
        return _number(first) and _number(last)
    used, slash, group = stride.partition("/")
    return _number(first) and _number(last) and slash == "/" and _number(used) and _number(group)


def cpu_list(s):
    """^([0-9]+(-[0-9]+(:[0-9]+/[0-9]+)?)?(,[0-9]+(-[0-9]+(:[0-9]+/[0-9]+)?)?)*)?$"""
    s = _chomp(s)
    if s == "":
        return True
    for item in s.split(","):
        if not _cpu_range(item):
            return False
    return True


def _prerelease_identifier(s):
    """0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*: alphanumerics and hyphens,
    non-empty; when all digits, no leading zero (except "0" itself)."""
    if s == "" or s.strip(_ALNUM_HYPHEN):
        return False
    if not s.strip(_DIGITS):
        return s == "0" or s[0] != "0"
    return True


def _build_identifier(s):
    """[0-9A-Za-z-]+"""
    return s != "" and not s.strip(_ALNUM_HYPHEN)


def oci_version(s):
    """^1\\.[0-3]\\.(0|[1-9][0-9]*)(-PRE(\\.PRE)*)?(\\+BUILD(\\.BUILD)*)?$ with
    PRE = 0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]* and BUILD = [0-9A-Za-z-]+:
    SemVer 2.0.0 from 1.0.0 to 1.3.x."""
    s = _chomp(s)
    # Neither the core nor a pre-release contains '+'; the core has no '-'.
    s, plus, build = s.partition("+")
    if plus:
        for identifier in build.split("."):
            if not _build_identifier(identifier):
                return False
    core, dash, prerelease = s.partition("-")
    if dash:
        for identifier in prerelease.split("."):
            if not _prerelease_identifier(identifier):
                return False
    if core[:2] != "1." or core[2:3] not in ("0", "1", "2", "3") or core[3:4] != ".":
        return False
    patch = core[4:]
    return patch == "0" or (_number(patch) and patch[0] != "0")


PATTERNS = {
    "^/": absolute_path,
    "^[^=]+=": env_variable,
    "^[rwm]*$": device_access,
    "^[0-9]+[KMGTPE]?B$": page_size,
    "^MB:[^\\n]*$": mem_bw_schema,
    "^([0-9]+(-[0-9]+(:[0-9]+/[0-9]+)?)?(,[0-9]+(-[0-9]+(:[0-9]+/[0-9]+)?)?)*)?$": cpu_list,
    "^1\\.[0-3]\\.(0|[1-9][0-9]*)(-(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
    "(\\.(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$": oci_version,
}
