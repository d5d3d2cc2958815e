"""Shared by the verbs: the store from --root, the container id argument,
--format and verbs without arguments,
reading + validating a bundle's config.json, the fds a caller passed, and
the signals run and exec forward while they wait.
Imports: errors, log, store, spec.*.
"""

from __future__ import annotations

from pyrunc import log
from pyrunc.errors import ConfigError, PyruncError, UsageError
from pyrunc.store import Store


def store_for(parsed) -> Store:
    """The state root: --root, or the default (store.default_root); a
    default under $XDG_RUNTIME_DIR is made private to the user first."""
    from pyrunc import store

    root = parsed.globals.get("root")
    if not root:
        root = store.default_root()
        if root != store.DEFAULT_ROOT:
            store.make_private_root(root)
    return Store(root)


_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def rootless_cgroups(parsed) -> bool:
    """--rootless as runc reads it: true or false as given (Go's boolean
    spellings), "auto" (the default): rootless for a user other than root
    and for root in a user namespace (it owns no cgroup of the host's)."""
    return rootless_setting(parsed.globals.get("rootless") or "auto")


def rootless_setting(value: str) -> bool:
    """What a --rootless value ("auto", or Go's boolean spellings) means here."""
    from pyrunc.linux import proc
    from pyrunc import oslite as os

    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if value != "auto":
        raise UsageError(f"--rootless: invalid value {value!r}; want true, false or auto")
    return os.geteuid() != 0 or proc.in_user_namespace()


def one_id(parsed, extra_ok: int = 0) -> str:
    args = parsed.args
    name = parsed.command.name
    if not args:
        raise UsageError(f"{name}: requires a container id; see `pyrunc {name} --help`")
    if len(args) > 1 + extra_ok:
        raise UsageError(f"{name}: unexpected arguments after the container id: {' '.join(args[1 + extra_ok:])}")
    return args[0]


def output_format(parsed, choices: tuple[str, ...]) -> str:
    """--format: one of `choices`, the first by default."""
    fmt = parsed.options.get("format") or choices[0]
    if fmt not in choices:
        raise UsageError(f"{parsed.command.name}: invalid format {fmt!r}: must be {' or '.join(choices)}")
    return fmt


def no_arguments(parsed, hint: str = "") -> None:
    """A verb that takes flags only."""
    if parsed.args:
        raise UsageError(f"{parsed.command.name}: takes no arguments" + (f"; {hint}" if hint else ""))


def check_preserved_fds(count: int, flag: str = "--preserve-fds") -> None:
    """The fds a container gets besides stdio (3 .. 3+count-1) must be ones
    the caller passed: open now, before pyrunc has opened anything (the
    verbs call this first). Otherwise a number would name one of pyrunc's
    own files (the --log file, the sync socket, a stub's memfd) and hand
    it to the container."""
    from pyrunc import oslite as os

    for fd in range(3, 3 + count):
        try:
            os.fstat(fd)
        except OSError:
            raise PyruncError(f"{flag}: fd {fd} (of {count} from fd 3) was not passed to pyrunc; "
                             "only fds the caller keeps open can be preserved") from None


def load_config(bundle: str | None):
    """Read, validate and model a bundle's config.json (no side effects)."""
    from pyrunc.linux.capabilities import read_cap_last_cap
    from pyrunc.spec import check, load, model

    bundle_dir = load.resolve_bundle(bundle)
    doc = load.read_config(bundle_dir)
    problems = validate_config(doc)
    if problems:
        raise ConfigError(problems)
    for path, message in check.warnings(doc, read_cap_last_cap()):
        log.warning(f"config.json: {path}: {message}" if path else f"config.json: {message}")
    return model.Config(doc, bundle_dir)


def validate_config(doc: dict) -> list[tuple[str, str]]:
    """Schema problems first; the semantic checks need a schema-valid document."""
    from pyrunc.spec import _validator, check

    # The generated validator gives jsonschema's verdict without its ~60 ms
    # import; jsonschema itself runs only on a rejected config, for the messages.
    if not _validator.is_valid_config(doc):
        from pyrunc.spec import schema

        problems = schema.validate(doc)
        if not problems:
            # Not a PyruncError: the CLI reports it as an internal error.
            raise RuntimeError("config.json: the fast validator rejected a config jsonschema accepts (a pyrunc bug)")
        log.phase("schema validation")
        return problems
    log.phase("schema validation")
    return check.check(doc)


def long_wait_ahead() -> None:
    """The command now relays or watches for as long as the container
    lives: collect cyclic garbage again (cli.main turned the collector off)."""
    import gc

    gc.enable()


class SignalForwarder:
    """While `run` (or `exec`) waits in the foreground, signals it receives go to the
    container's init (as runc does). With a relayed terminal, SIGWINCH
    resizes the container's pty instead."""

    _FORWARDED = (1, 2, 3, 10, 12, 14, 15, 28)  # HUP INT QUIT USR1 USR2 ALRM TERM WINCH

    def __init__(self, pidfd: int, relay=None):
        import _signal

        self.pidfd = pidfd
        self.relay = relay
        self.saved = {n: _signal.signal(n, self._forward) for n in self._FORWARDED}

    def _forward(self, number, frame) -> None:
        import _signal

        if number == 28 and self.relay is not None:
            self.relay.copy_window_size()
            return
        try:
            _signal.pidfd_send_signal(self.pidfd, number)
        except OSError:
            pass

    def restore(self) -> None:
        import _signal

        for number, handler in self.saved.items():
            _signal.signal(number, handler)
