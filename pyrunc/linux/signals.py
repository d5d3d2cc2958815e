"""Signal names and numbers as `kill` accepts them: 9, KILL, SIGKILL, kill,
RTMIN+3, and 0 (no signal: is it alive?). Linux numbering (the same on x86_64 and arm64). Stdlib only."""

from __future__ import annotations

SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7,
    "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14,
    "TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21,
    "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28,
    "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}
SIGRTMIN = 34
SIGRTMAX = 64


def parse_signal(text: str) -> int:
    """The signal number for `text`; raises ValueError naming the bad value."""
    raw = text.strip()
    if raw.isdigit():
        number = int(raw)
        # 0 sends nothing and checks the process is there (runc sends it:
        # a liveness probe).
        if 0 <= number <= SIGRTMAX:
            return number
        raise ValueError(f"invalid signal {text!r}: numbers go from 0 to {SIGRTMAX}")
    name = raw.upper().removeprefix("SIG")
    if name in SIGNALS:
        return SIGNALS[name]
    for base, number, sign in (("RTMIN", SIGRTMIN, 1), ("RTMAX", SIGRTMAX, -1)):
        if name == base:
            return number
        if name.startswith(base + ("+" if sign > 0 else "-")) and name[len(base) + 1 :].isdigit():
            result = number + sign * int(name[len(base) + 1 :])
            if SIGRTMIN <= result <= SIGRTMAX:
                return result
    raise ValueError(f"invalid signal {text!r}")


