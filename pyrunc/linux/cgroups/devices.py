"""Device access for a container's cgroup: which device nodes it may open.

OCI `linux.resources.devices` rules ({"allow", "type", "major", "minor",
"access"}) are first folded into the state they describe, the way the v1
devices controller folds them (runc's devices emulator): a default (allow
or deny everything) plus per-device exceptions. From that state:

* cgroup v1: `v1_device_writes` gives the writes to devices.allow and
  devices.deny that take the cgroup from its current devices.list to it;
* cgroup v2 (no devices controller): `build_device_filter` compiles it to a
  BPF_PROG_TYPE_CGROUP_DEVICE program, `attach_device_filter` loads and
  attaches that with bpf(2).

`container_device_rules` is what a container gets: the config's rules, then
the devices runc always allows (DEFAULT_DEVICES) -- appended after, as runc
does, so a config's leading {"allow": false, "access": "rwm"} still leaves
/dev/null usable.
Imports: errors; lazily, for bpf(2): linux._libc, resource.
"""

from __future__ import annotations

from pyrunc.errors import KernelError, PyruncError

WILDCARD = -1

# Access bits, in the order runc prints them ("rwm").
_READ, _WRITE, _MKNOD = 1, 2, 4
_ACCESS_BITS = {"r": _READ, "w": _WRITE, "m": _MKNOD}

# (path or None, rule) -- runc's specconv AllowedDevices (1.1 to 1.5), in
# its order. A default with a path is dropped when the config's
# linux.devices lists that path (the config's device takes priority).
# runc allows no 5:1 (/dev/console): the console is a pty, 136:*.
DEFAULT_DEVICES = (
    (None, {"allow": True, "type": "c", "access": "m"}),                   # mknod any char device
    (None, {"allow": True, "type": "b", "access": "m"}),                   # mknod any block device
    ("/dev/null", {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}),
    ("/dev/random", {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"}),
    ("/dev/full", {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"}),
    ("/dev/tty", {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"}),
    ("/dev/zero", {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"}),
    ("/dev/urandom", {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"}),
    (None, {"allow": True, "type": "c", "major": 136, "access": "rwm"}),   # /dev/pts/*
    (None, {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"}),  # /dev/ptmx
    (None, {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"}),  # /dev/net/tun
)


def container_device_rules(config_rules, device_paths=()) -> list[dict]:
    """The device rules a container's cgroup gets: `config_rules`
    (linux.resources.devices) in order, then DEFAULT_DEVICES minus those
    whose path is among `device_paths` (the paths of linux.devices)."""
    listed = set(device_paths)
    rules = [dict(rule) for rule in config_rules or ()]
    rules.extend(dict(rule) for path, rule in DEFAULT_DEVICES if path is None or path not in listed)
    return rules


# ---------------------------------------------------------------- the emulator


class _Rule:
    __slots__ = ("allow", "kind", "major", "minor", "access", "where")

    def __init__(self, allow: bool, kind: str, major: int, minor: int, access: int, where: str = ""):
        self.allow = allow
        self.kind = kind
        self.major = major
        self.minor = minor
        self.access = access
        self.where = where

    def line(self) -> str:
        """The rule as devices.allow / devices.deny / devices.list spell it."""
        major = "*" if self.major == WILDCARD else str(self.major)
        minor = "*" if self.minor == WILDCARD else str(self.minor)
        return f"{self.kind} {major}:{minor} {format_access(self.access)}"


def format_access(bits: int) -> str:
    return "".join(c for c, bit in (("r", _READ), ("w", _WRITE), ("m", _MKNOD)) if bits & bit)


def parse_rule(rule: dict, where: str = "") -> _Rule:
    """An OCI device rule; absent type is "a", absent major/minor "*"."""
    kind = rule.get("type") or "a"
    if kind not in ("a", "b", "c"):
        raise PyruncError(f'{where}.type: invalid cgroup device type "{kind}" (must be a, b or c)')
    access = rule.get("access") or ""
    if not access:
        raise PyruncError(f"{where}.access: must not be empty")
    bits = 0
    for c in access:
        if c not in _ACCESS_BITS:
            raise PyruncError(f'{where}.access: invalid access "{access}" (a combination of r, w and m)')
        bits |= _ACCESS_BITS[c]
    major = rule.get("major")
    minor = rule.get("minor")
    return _Rule(bool(rule.get("allow")), kind, WILDCARD if major is None else int(major),
                 WILDCARD if minor is None else int(minor), bits, where)


class DeviceState:
    """What the v1 devices controller holds: a default (`default_allow`) and
    exceptions {(type, major, minor): access bits} to it.

    Rules fold in as the kernel folds them: a type "a" rule resets the
    default and drops every exception; another rule with the default's
    verdict removes access from an exception, one with the opposite verdict
    adds an exception. Removing access that a wildcard exception grants is
    refused (the kernel cannot punch a hole in a wildcard).
    """

    __slots__ = ("default_allow", "exceptions")

    def __init__(self, default_allow: bool = False):
        self.default_allow = default_allow
        self.exceptions: dict[tuple[str, int, int], int] = {}

    def fold(self, rule: _Rule) -> None:
        if rule.kind == "a":
            self.default_allow = rule.allow
            self.exceptions = {}
            return
        key = (rule.kind, rule.major, rule.minor)
        if rule.allow != self.default_allow:
            self.exceptions[key] = self.exceptions.get(key, 0) | rule.access
            return
        for wider in ((rule.kind, WILDCARD, rule.minor), (rule.kind, rule.major, WILDCARD),
                      (rule.kind, WILDCARD, WILDCARD)):
            if wider != key and self.exceptions.get(wider, 0) & rule.access:
                wide = _Rule(not self.default_allow, *wider, self.exceptions[wider])
                raise PyruncError(f'{rule.where or "devices"}: the rule "{rule.line()}" cannot take access away '
                                  f'from the wildcard rule "{wide.line()}" (the devices cgroup cannot punch holes '
                                  "in a wildcard rule)")
        left = self.exceptions.get(key, 0) & ~rule.access
        if left:
            self.exceptions[key] = left
        else:
            self.exceptions.pop(key, None)

    def ordered(self) -> list[tuple[tuple[str, int, int], int]]:
        """Exceptions by major, then minor, then type (wildcards first), as runc orders them."""
        return sorted(self.exceptions.items(), key=lambda item: (item[0][1], item[0][2], item[0][0]))

    def transition_to(self, target: "DeviceState") -> list[_Rule]:
        """The fewest rules that take this state to `target` (runc's emulator
        Transition): a reset when the default changes or this state is a
        deny-list, then the access each exception loses, then what it gains."""
        rules = []
        old = self.exceptions
        if self.default_allow or self.default_allow != target.default_allow:
            rules.append(_Rule(target.default_allow, "a", WILDCARD, WILDCARD, _READ | _WRITE | _MKNOD))
            old = {}
        for key, bits in sorted(old.items(), key=lambda item: (item[0][1], item[0][2], item[0][0])):
            dropped = bits & ~target.exceptions.get(key, 0)
            if dropped:
                rules.append(_Rule(target.default_allow, *key, dropped))
        # Gains in the order the rules first granted them (config-linux.md:
        # "The runtime MUST apply entries in the listed order"): a v1
        # devices.list then lists the config's rules first, in order, as crun's does.
        for key, bits in target.exceptions.items():
            gained = bits & ~old.get(key, 0)
            if gained:
                rules.append(_Rule(not target.default_allow, *key, gained))
        return rules


def fold_rules(rules, where: str = "linux.resources.devices") -> DeviceState:
    """The state a fresh deny-everything state reaches after `rules` (OCI
    dicts, in order)."""
    state = DeviceState(default_allow=False)
    for i, rule in enumerate(rules or ()):
        state.fold(parse_rule(rule, f"{where}[{i}]"))
    return state


def parse_devices_list(text: str) -> DeviceState:
    """A v1 devices.list: "a *:* rwm" (everything allowed) or allowed
    exceptions, one per line, "c 1:3 rwm"."""
    state = DeviceState(default_allow=False)
    for line in text.splitlines():
        fields = line.replace(":", " ").split()
        if not fields:
            continue
        if len(fields) != 4:
            raise PyruncError(f'devices.list: malformed line "{line}"')
        kind, major, minor, access = fields
        if kind == "a":
            state.fold(_Rule(True, "a", WILDCARD, WILDCARD, 7))
            continue
        bits = 0
        for c in access:
            bits |= _ACCESS_BITS.get(c, 0)
        state.fold(_Rule(True, kind, WILDCARD if major == "*" else int(major),
                         WILDCARD if minor == "*" else int(minor), bits))
    return state


# ---------------------------------------------------------------- cgroup v1


def v1_device_writes(rules, current_list: str | None = None) -> list[tuple[str, str]]:
    """[(file, line)] for devices.allow / devices.deny that take a v1 devices
    cgroup from `current_list` (its devices.list; None: a new cgroup under
    an unrestricted parent, "a *:* rwm") to what `rules` describe.

    For a deny-by-default rule list on a new cgroup: "a *:* rwm" to
    devices.deny, then each allowed device to devices.allow, in the order
    the rules list them. Runs of the same rule are folded, so the list is minimal
    and never passes through a state that denies a device both the old and
    the new state allow (runc's reason for the emulator: `update`).
    """
    target = fold_rules(rules)
    source = parse_devices_list("a *:* rwm" if current_list is None else current_list)
    return [("devices.allow" if rule.allow else "devices.deny", rule.line()) for rule in source.transition_to(target)]


# ---------------------------------------------------------------- cgroup v2: eBPF

# struct bpf_insn opcodes (linux/bpf.h, linux/bpf_common.h).
_LDX_MEM_W = 0x61    # BPF_LDX | BPF_MEM | BPF_W      dst = *(u32 *)(src + off)
_ALU_AND_K = 0x54    # BPF_ALU | BPF_AND | BPF_K      dst32 &= imm
_ALU_RSH_K = 0x74    # BPF_ALU | BPF_RSH | BPF_K      dst32 >>= imm
_ALU_MOV_K = 0xb4    # BPF_ALU | BPF_MOV | BPF_K      dst32 = imm
_ALU_MOV_X = 0xbc    # BPF_ALU | BPF_MOV | BPF_X      dst32 = src32
_JMP_JNE_K = 0x55    # BPF_JMP | BPF_JNE | BPF_K      if dst != imm goto +off
_JMP_JNE_X = 0x5d    # BPF_JMP | BPF_JNE | BPF_X      if dst != src goto +off
_JMP_EXIT = 0x95     # BPF_JMP | BPF_EXIT             return r0

# struct bpf_cgroup_dev_ctx: access_type = (access << 16) | type; major; minor.
DEVCG_DEV_BLOCK = 1
DEVCG_DEV_CHAR = 2
DEVCG_ACC_MKNOD = 1
DEVCG_ACC_READ = 2
DEVCG_ACC_WRITE = 4
_BPF_ACCESS = {_READ: DEVCG_ACC_READ, _WRITE: DEVCG_ACC_WRITE, _MKNOD: DEVCG_ACC_MKNOD}

LICENSE = "Apache"


def encode_insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One struct bpf_insn: u8 code, u8 dst:4 | src:4 << 4, s16 off, s32 imm
    (little-endian, the byte order of every architecture pyrunc runs on)."""
    if imm > 0x7FFFFFFF:
        imm -= 1 << 32
    return bytes((code, (src << 4) | dst)) + off.to_bytes(2, "little", signed=True) + imm.to_bytes(4, "little",
                                                                                                 signed=True)


def build_device_filter(rules) -> bytes:
    """The BPF_PROG_TYPE_CGROUP_DEVICE program for `rules` (OCI dicts, the
    full list, defaults included), as bytes of struct bpf_insn.

    runc's devicefilter.go algorithm, from crun's ebpf.c: fold the rules
    (see DeviceState), then
        r2 = type, r3 = requested access, r4 = major, r5 = minor
    and per exception, sorted, a block that jumps to the next block on any
    mismatch (type; access not a subset, unless the rule grants rwm; major
    and minor unless wildcards) and otherwise returns the exception's
    verdict; after the last block, return the default verdict.
    """
    state = fold_rules(rules)
    program = [
        encode_insn(_LDX_MEM_W, dst=2, src=1, off=0),      # r2 = ctx->access_type
        encode_insn(_ALU_AND_K, dst=2, imm=0xFFFF),        # r2 &= 0xffff: the device type
        encode_insn(_LDX_MEM_W, dst=3, src=1, off=0),      # r3 = ctx->access_type
        encode_insn(_ALU_RSH_K, dst=3, imm=16),            # r3 >>= 16: the access asked for
        encode_insn(_LDX_MEM_W, dst=4, src=1, off=4),      # r4 = ctx->major
        encode_insn(_LDX_MEM_W, dst=5, src=1, off=8),      # r5 = ctx->minor
    ]
    verdict = 0 if state.default_allow else 1
    for (kind, major, minor), bits in state.ordered():
        program.extend(_rule_block(kind, major, minor, bits, verdict))
    program.append(encode_insn(_ALU_MOV_K, dst=0, imm=1 if state.default_allow else 0))
    program.append(encode_insn(_JMP_EXIT))
    return b"".join(program)


def _rule_block(kind: str, major: int, minor: int, bits: int, verdict: int) -> list[bytes]:
    if major > 0xFFFFFFFF or minor > 0xFFFFFFFF:
        raise PyruncError(f"linux.resources.devices: invalid device number {major}:{minor}")
    access = 0
    for bit, bpf in _BPF_ACCESS.items():
        if bits & bit:
            access |= bpf
    # Each test is (opcode, dst, src, imm); all jump to the next block.
    tests = [(_JMP_JNE_K, 2, 0, DEVCG_DEV_CHAR if kind == "c" else DEVCG_DEV_BLOCK)]
    checks_access = access != (DEVCG_ACC_READ | DEVCG_ACC_WRITE | DEVCG_ACC_MKNOD)
    if checks_access:
        tests += [(_ALU_MOV_X, 1, 3, 0), (_ALU_AND_K, 1, 0, access), (_JMP_JNE_X, 1, 3, 0)]
    if major >= 0:
        tests.append((_JMP_JNE_K, 4, 0, major))
    if minor >= 0:
        tests.append((_JMP_JNE_K, 5, 0, minor))
    length = len(tests) + 2  # + "r0 = verdict; exit"
    block = []
    for position, (code, dst, src, imm) in enumerate(tests):
        # as runc, the immediate is the number as int32 (numbers above 2**31 wrap)
        off = length - position - 1 if code in (_JMP_JNE_K, _JMP_JNE_X) else 0
        block.append(encode_insn(code, dst=dst, src=src, off=off, imm=imm & 0xFFFFFFFF))
    block.append(encode_insn(_ALU_MOV_K, dst=0, imm=verdict))
    block.append(encode_insn(_JMP_EXIT))
    return block


# bpf(2) commands, program and attach types, flags (linux/bpf.h).
_BPF_PROG_LOAD = 5
_BPF_PROG_ATTACH = 8
_BPF_PROG_DETACH = 9
_BPF_PROG_GET_FD_BY_ID = 13
_BPF_PROG_QUERY = 16
_BPF_PROG_TYPE_CGROUP_DEVICE = 15
_BPF_CGROUP_DEVICE = 6
_BPF_F_ALLOW_MULTI = 2


class _Bpf:
    """The bpf(2) commands the device filter needs, each a zeroed `union
    bpf_attr` prefix with its fields packed in, through _libc.bpf (the C
    module; ctypes only where it was not built)."""

    def __init__(self):
        from pyrunc.linux import _libc

        self.call = _libc.bpf

    def load(self, program: bytes, log_size: int = 0) -> int:
        """BPF_PROG_LOAD: the program's fd, or OSError (with the verifier log
        as .filename when `log_size` asks for one)."""
        insns = bytearray(program)
        license = bytearray(LICENSE.encode() + b"\0")
        log = bytearray(log_size)
        attr = bytearray(72)
        # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf
        _pack(attr, 0, 4, _BPF_PROG_TYPE_CGROUP_DEVICE, 4, len(program) // 8)
        _pack(attr, 24, 4, 1 if log_size else 0, 4, log_size)
        pointers = [(8, insns), (16, license)] + ([(32, log)] if log_size else [])
        try:
            return self.call(_BPF_PROG_LOAD, attr, pointers)
        except OSError as err:
            if log_size:
                err.filename = log.split(b"\0", 1)[0].decode(errors="replace").strip()
            raise

    def attach_cmd(self, cmd: int, target_fd: int, prog_fd: int, flags: int = 0) -> None:
        attr = bytearray(20)
        # target_fd, attach_bpf_fd, attach_type, attach_flags, replace_bpf_fd
        _pack(attr, 0, 4, target_fd, 4, prog_fd, 4, _BPF_CGROUP_DEVICE, 4, flags)
        self.call(cmd, attr)

    def query(self, target_fd: int) -> list[int]:
        """BPF_PROG_QUERY: the ids of the device programs attached to the cgroup."""
        count = 64
        for _ in range(10):
            ids = bytearray(4 * count)
            attr = bytearray(32)
            # target_fd, attach_type, query_flags, attach_flags, prog_ids (at 16), prog_cnt (at 24)
            _pack(attr, 0, 4, target_fd, 4, _BPF_CGROUP_DEVICE)
            _pack(attr, 24, 4, count)
            try:
                self.call(_BPF_PROG_QUERY, attr, [(16, ids)])
            except OSError as err:
                if err.errno == 28:  # ENOSPC: more than `count`; prog_cnt has the number
                    count = int.from_bytes(attr[24:28], "little")
                    continue
                raise
            found = int.from_bytes(attr[24:28], "little")
            return [int.from_bytes(ids[4 * i:4 * i + 4], "little") for i in range(found)]
        raise OSError(28, "bpf")

    def fd_by_id(self, prog_id: int) -> int:
        attr = bytearray(12)
        _pack(attr, 0, 4, prog_id)
        return self.call(_BPF_PROG_GET_FD_BY_ID, attr)


def _pack(buffer: bytearray, offset: int, *sizes_and_values: int) -> None:
    """Little-endian unsigned fields, (size, value) pairs, from `offset` on
    (struct.pack_into without importing struct)."""
    for size, value in zip(sizes_and_values[::2], sizes_and_values[1::2]):
        buffer[offset:offset + size] = value.to_bytes(size, "little")
        offset += size


def attach_device_filter(cgroup_dir_fd: int, program: bytes) -> None:
    """Load `program` (build_device_filter) and attach it to the cgroup v2
    directory open as `cgroup_dir_fd`, then detach the device programs that
    were attached before (as runc: after, so there is no moment without a
    filter; an old program the caller may not open is left, it can only
    restrict more). Raises KernelError naming the bpf(2) step that failed.
    """
    from pyrunc import oslite as os

    bpf = _Bpf()
    try:
        old_ids = bpf.query(cgroup_dir_fd)
    except OSError as err:
        raise KernelError("query device filters (bpf BPF_PROG_QUERY)", "", err.errno) from None
    prog_fd = _load_with_memlock(bpf, program)
    try:
        try:
            bpf.attach_cmd(_BPF_PROG_ATTACH, cgroup_dir_fd, prog_fd, _BPF_F_ALLOW_MULTI)
        except OSError as err:
            raise KernelError("attach device filter (bpf BPF_PROG_ATTACH, BPF_CGROUP_DEVICE)", "", err.errno) from None
        for prog_id in old_ids:
            try:
                old_fd = bpf.fd_by_id(prog_id)
            except OSError as err:
                if err.errno in (1, 13, 2):  # EPERM, EACCES (LSM policy); ENOENT: gone already
                    continue
                raise KernelError(f"open old device filter {prog_id} (bpf BPF_PROG_GET_FD_BY_ID)", "",
                                  err.errno) from None
            try:
                bpf.attach_cmd(_BPF_PROG_DETACH, cgroup_dir_fd, old_fd)
            except OSError as err:
                if err.errno != 2:
                    raise KernelError(f"detach old device filter {prog_id} (bpf BPF_PROG_DETACH)", "",
                                      err.errno) from None
            finally:
                os.close(old_fd)
    finally:
        os.close(prog_fd)  # the attachment holds its own reference


def _load_with_memlock(bpf: _Bpf, program: bytes) -> int:
    # Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK: on EPERM, raise
    # it for the load only (runc raises it for good; this process may still
    # fork the container's init, which must not inherit that).
    import resource

    try:
        return bpf.load(program)
    except OSError as err:
        if err.errno != 1:
            return _load_failed(bpf, program, err)
    old = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    try:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (OSError, ValueError):
        pass
    try:
        return bpf.load(program)
    except OSError as err:
        return _load_failed(bpf, program, err)
    finally:
        try:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, old)
        except (OSError, ValueError):
            pass


def _load_failed(bpf: _Bpf, program: bytes, err: OSError) -> int:
    detail = ""
    if err.errno in (22, 13):  # EINVAL, EACCES: ask the verifier why
        try:
            return bpf.load(program, log_size=1 << 16)
        except OSError as again:
            detail = (again.filename or "").splitlines()[-1] if again.filename else ""
    raise KernelError("load device filter (bpf BPF_PROG_LOAD)", "", err.errno, detail) from None
