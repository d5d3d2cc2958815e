# The in-container checker, sourced by the container process (busybox sh):
#   /bin/sh -c '. /.conformance/lib.sh; probe_status; probe_stat /dev/null ...'
# Each probe prints "@@@ NAME [ARG]" and then what the container sees, raw; the
# suite on the host compares it with config.json. $$ is the container process
# itself (the shell the runtime executed), so /proc/$$ shows what the runtime
# set up, not what a child of it would get after another execve.

p() { echo "@@@ $*"; }

probe_status()    { p status;    cat /proc/$$/status; }
probe_mountinfo() { p mountinfo; cat /proc/$$/mountinfo; }
probe_limits()    { p limits;    cat /proc/$$/limits; }
probe_environ()   { p environ;   tr '\0' '\n' < /proc/$$/environ; }
probe_cmdline()   { p cmdline;   tr '\0' '\n' < /proc/$$/cmdline; }
probe_cwd()       { p cwd;       pwd; }
probe_umask()     { p umask;     umask; }
probe_cgroup()    { p cgroup;    cat /proc/$$/cgroup; }
probe_oom()       { p oom;       cat /proc/$$/oom_score_adj; }
probe_pid()       { p pid;       echo $$; }
probe_uts()       { p uts;       cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname; }
probe_timens()    { p timens;    cat /proc/$$/timens_offsets 2>&1; }

probe_ns() {
  p ns
  for n in cgroup ipc mnt net pid time uts user; do echo "$n $(readlink /proc/$$/ns/$n)"; done
}

# type|major(hex)|minor(hex)|mode(octal)|uid|gid, or ERR
probe_stat() {
  for f; do p stat "$f"; stat -c '%F|%t|%T|%a|%u|%g' "$f" 2>/dev/null || echo ERR; done
}

probe_link() {
  for f; do p link "$f"; readlink "$f" 2>/dev/null || echo ERR; done
}

# contents, then rc=N
probe_read() {
  for f; do p read "$f"; cat "$f" 2>&1; echo "rc=$?"; done
}

probe_ls() {
  for d; do p ls "$d"; ls -A "$d" 2>&1; echo "rc=$?"; done
}

# create (or truncate) a file: rc=0 when it could be written
probe_write() {
  for f; do p write "$f"; ( : > "$f" ) 2>&1; echo "rc=$?"; done
}

# open a device for reading and for writing, moving no data: the device cgroup
# decides at open(2) (EPERM when denied; other errors come from the driver)
probe_open() {
  for f; do
    p open "$f"
    echo "read $(dd if="$f" of=/dev/null bs=1 count=0 2>&1 | head -n 1)"
    echo "write $(dd if=/dev/zero of="$f" bs=1 count=0 conv=notrunc 2>&1 | head -n 1)"
  done
}

# values of sysctls named with dots
probe_sysctl() {
  for k; do p sysctl "$k"; cat "/proc/sys/$(echo "$k" | tr . /)" 2>&1; done
}

probe_all() {
  probe_status; probe_mountinfo; probe_limits; probe_environ; probe_cmdline; probe_cwd; probe_umask
  probe_cgroup; probe_oom; probe_pid; probe_uts; probe_ns
}
