"""The Python side of the pyrunc command, installed as <venv>/share/pyrunc/main.py.

bin/pyrunc (the launcher, a static program) runs
    <venv>/bin/python -I -S <venv>/share/pyrunc/main.py ARG...
-I keeps the caller's PYTHON* variables and user site out of a root process
that builds containers, and the script's directory off sys.path; -S skips
site.py (about 1.5 ms per call). pip's generated console script would import
`re` (about 3 ms) and `python -m pyrunc` goes through runpy; a container start
is about 20 ms. So this adds the venv's site-packages and the path entries
of its .pth files (an editable install's source tree) by hand; anything
unusual falls back to site.main(), which in isolated mode reads nothing of
the caller's either.

Then pyrunc's own modules (about 50 for a `run`) load through
pyrunc.fastimport, which goes straight to the bytecode compiled at install.
This script stays short: the interpreter compiles it on every call.
"""
import sys


def _add_site_packages():
    # posix, not os: the command never imports os (pyrunc.oslite says why).
    from posix import getcwd, listdir, stat

    # This file is <venv>/share/pyrunc/main.py; its path may hold "." and "..":
    # normalise it first (as os.path.abspath), then drop share/pyrunc/main.py.
    parts = []
    for part in (__file__ if __file__.startswith("/") else getcwd() + "/" + __file__).split("/"):
        if part == "..":
            parts = parts[:-1]
        elif part and part != ".":
            parts.append(part)
    site_packages = "/%s/lib/python%d.%d/site-packages" % ("/".join(parts[:-3]), *sys.version_info[:2])
    try:
        names = listdir(site_packages)
    except OSError:
        return
    sys.path.append(site_packages)
    for name in sorted(names):
        if not name.endswith(".pth"):
            continue
        with open(site_packages + "/" + name) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith(("#", "import")):
                    continue
                # As site.py does: relative to site-packages, never to the caller's cwd.
                if not line.startswith("/"):
                    line = site_packages + "/" + line
                try:
                    is_dir = stat(line).st_mode & 0o170000 == 0o040000
                except (OSError, ValueError):
                    continue
                if is_dir:
                    sys.path.append(line)


def load_cli():
    """pyrunc.cli's run_and_exit, pyrunc found on sys.path and its modules
    through pyrunc.fastimport."""
    import gc

    gc.disable()  # from the first import on (pyrunc.cli.run_and_exit says why)
    _add_site_packages()
    try:
        from pyrunc.fastimport import install
    except ImportError:
        import site

        site.main()
        from pyrunc.fastimport import install
    install()
    from pyrunc.cli import run_and_exit

    return run_and_exit


if __name__ == "__main__":
    load_cli()()
