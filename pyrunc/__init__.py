"""pyrunc: an OCI runtime written in Python, with runc's command line.

Importing the package must stay cheap: every CLI call pays for it. The
Python API (pyrunc.Runtime, pyrunc.validate, ...: see pyrunc.api) is
imported on first use, by the module __getattr__ below.
"""

__version__ = "0.1.0"
# The runtime-spec version pyrunc implements and writes into state and `spec`.
OCI_VERSION = "1.2.0"

_API_NAMES = frozenset({
    "Runtime", "ContainerState", "Problem", "validate", "check", "default_spec", "PyruncError", "ContainerError",
    "ContainerNotFound", "ContainerExists", "InvalidStatus", "ConfigError", "KernelError", "ThreadsRunning",
})


def __getattr__(name: str):
    if name in _API_NAMES:
        from pyrunc import api

        return getattr(api, name)
    raise AttributeError(f"module 'pyrunc' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API_NAMES])
