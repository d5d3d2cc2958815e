"""setup.cfg holds the metadata; this file only adds the C module, which
setup.cfg cannot declare.

pyrunc.linux._sys (pyrunc/linux/_sys.c) wraps the system calls `os` lacks
without ctypes, whose import costs every forking command ~2 ms of CPU.
optional: without a compiler or Python's headers the install goes on, and
pyrunc.linux._libc falls back to the same calls through ctypes.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("pyrunc.linux._sys", ["pyrunc/linux/_sys.c"], optional=True)])
