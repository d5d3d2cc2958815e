"""pyrunc: an OCI runtime written in Python, with runc's command line.

Importing the package must stay cheap: every CLI call pays for it.
"""

__version__ = "0.1.0"
# The runtime-spec version pyrunc implements and writes into state and `spec`.
OCI_VERSION = "1.2.0"
