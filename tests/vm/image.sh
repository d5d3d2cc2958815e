#!/bin/bash
# tests/vm/image.sh [--rebuild]
#
# Makes sure the test-bed VM image exists in the cache and prints its
# directory. The image: Debian 12 (bookworm) with systemd as PID 1, pure
# cgroup v2 (every controller), AppArmor enabled, kernel 6.1, and the engines
# and tools later jobs need (Podman, containerd, Docker, runc, crun, CRIU).
# Docker and containerd are installed but not enabled: a job starts what it
# tests.
#
# Cache: $PYRUNC_VM_CACHE (default /var/tmp/pyrunc-vm)/image-<key>/, where
# <key> is a hash of this script (package list, customisation, kernel command
# line) and $SUITE: editing this file builds a new image; older image-*
# directories are removed then. A build goes to a temporary directory renamed
# into place at the end, so an interrupted build leaves no half image.
#
# Directory contents: rootfs.img (raw ext4, sparse, root=/dev/vda, no
# partition table), vmlinuz, initrd.img, cmdline, packages.txt, build-info.txt.
#
# In the guest, vm-job.service mounts the virtio-9p share "work" at /vmshare,
# runs /vmshare/job.sh (output to /vmshare/job.out, exit code to /vmshare/job.rc) and
# powers off; without /vmshare/job.sh it stays up with root autologin on ttyS0.
#
# Needs (host, root): mmdebstrap, e2fsprogs (mke2fs -d; no loop devices), and
# the host's apt sources for $SUITE (they are the guest's mirror).
# Env: SUITE (bookworm)  IMG_SIZE (8G, sparse)  PYRUNC_VM_CACHE
set -euo pipefail

SELF=$(readlink -f "$0")

# Debian packages of the guest. Changing this list changes the cache key.
PACKAGES="systemd,systemd-sysv,linux-image-amd64,initramfs-tools,udev,kmod,dbus,dbus-user-session,apparmor,\
python3,python3-venv,python3-grpcio,busybox-static,iproute2,iptables,procps,util-linux,less,jq,ca-certificates,\
criu,runc,crun,conmon,podman,netavark,aardvark-dns,catatonit,uidmap,slirp4netns,fuse-overlayfs,\
containerd,docker.io,tini"
CMDLINE="root=/dev/vda rw console=ttyS0,115200 panic=1 systemd.unified_cgroup_hierarchy=1 apparmor=1"

# ---------------------------------------------------------------------------
# customisation: run by mmdebstrap as --customize-hook "$SELF --customize ROOT"
# (ROOT has /proc, /sys and /dev mounted at that point)
# ---------------------------------------------------------------------------
if [ "${1:-}" = "--customize" ]; then
    R=${2:?root dir}
    echo "vmtest" > "$R/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tvmtest\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
    printf '/dev/vda\t/\text4\trw,errors=remount-ro\t0\t1\n' > "$R/etc/fstab"
    # A machine-id of its own: an empty one makes every boot a first boot.
    tr -d '-' < /proc/sys/kernel/random/uuid > "$R/etc/machine-id"
    mkdir -p "$R/vmshare"
    chroot "$R" passwd -d root >/dev/null

    # root autologin on the serial console, for a debugging boot without a job
    mkdir -p "$R/etc/systemd/system/serial-getty@ttyS0.service.d"
    cat > "$R/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
EOF

    cat > "$R/usr/local/sbin/vm-job-runner" <<'EOF'
#!/bin/bash
# Mount the 9p share "work" at /vmshare, run /vmshare/job.sh, record its output and
# exit code there, power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
say() { echo "vm-job: $*"; }
modprobe -a 9pnet_virtio 9p 2>/dev/null || true
mkdir -p /vmshare
if ! mountpoint -q /vmshare; then
    if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 work /vmshare; then
        say "cannot mount the 9p share 'work'; powering off"
        systemctl poweroff --no-block; exit 1
    fi
fi
if [ ! -f /vmshare/job.sh ]; then
    say "no /vmshare/job.sh: staying up (root autologin on ttyS0)"; exit 0
fi
# This unit is Type=simple: its start job is done once it is forked, so the
# boot can finish while it runs. Wait for that: the job sees a booted system.
state=$(timeout 120 systemctl is-system-running --wait 2>&1)
read -r up _ < /proc/uptime
echo "uptime_at_job_start=$up system_state=$state" > /vmshare/vm-job.started
systemd-analyze > /vmshare/vm-systemd-analyze.txt 2>&1 || true
say "starting /vmshare/job.sh (uptime ${up}s, system $state)"
cd /vmshare
bash /vmshare/job.sh > /vmshare/job.out 2>&1
rc=$?
read -r up _ < /proc/uptime
echo "uptime_at_job_end=$up" >> /vmshare/vm-job.started
echo "$rc" > /vmshare/job.rc.tmp && mv -f /vmshare/job.rc.tmp /vmshare/job.rc
sync
say "job.sh exited with $rc; powering off"
systemctl poweroff --no-block
EOF
    chmod 755 "$R/usr/local/sbin/vm-job-runner"

    cat > "$R/etc/systemd/system/vm-job.service" <<'EOF'
[Unit]
Description=Run /vmshare/job.sh from the 9p share (tag "work") and power off
After=multi-user.target

[Service]
# Type=simple: the start job completes at fork, so the boot can finish
# (systemctl is-system-running says "running") while the job runs.
Type=simple
ExecStart=/usr/local/sbin/vm-job-runner
StandardOutput=journal+console
StandardError=journal+console
Environment=HOME=/root
# The job's processes may be many (stress tests), and their pids are fine.
TasksMax=infinity
KillMode=mixed
TimeoutStopSec=10

[Install]
WantedBy=multi-user.target
EOF
    chroot "$R" systemctl enable vm-job.service
    # Engines start only when a job starts them (they would make cgroups,
    # iptables rules and mounts of their own at boot, and slow it down).
    chroot "$R" systemctl disable docker.service docker.socket containerd.service 2>/dev/null || true
    # Nothing periodic may fire during a run.
    chroot "$R" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
        e2scrub_reap.service fstrim.timer man-db.timer dpkg-db-backup.timer logrotate.timer \
        systemd-tmpfiles-clean.timer podman-auto-update.timer podman-restart.service 2>/dev/null || true
    # A quiet, volatile journal.
    mkdir -p "$R/etc/systemd/journald.conf.d"
    printf '[Journal]\nStorage=volatile\nForwardToConsole=no\n' > "$R/etc/systemd/journald.conf.d/vm.conf"
    # The initrd must find a virtio root disk.
    printf 'virtio_pci\nvirtio_blk\next4\n' >> "$R/etc/initramfs-tools/modules"
    chroot "$R" update-initramfs -u -k all
    chroot "$R" dpkg-query -W -f '${Package} ${Version}\n' > "$R/root/packages.txt"
    rm -f "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/*_Packages* 2>/dev/null || true
    exit 0
fi

# ---------------------------------------------------------------------------
# main: find the cached image, or build it
# ---------------------------------------------------------------------------
REBUILD=0
[ "${1:-}" = "--rebuild" ] && REBUILD=1
SUITE=${SUITE:-bookworm}
IMG_SIZE=${IMG_SIZE:-8G}
CACHE=${PYRUNC_VM_CACHE:-/var/tmp/pyrunc-vm}
KEY=$( { cat "$SELF"; echo "$SUITE $IMG_SIZE"; } | sha256sum | cut -c1-16)
OUT=$CACHE/image-$KEY
log() { echo "[vm-image] $*" >&2; }

if [ "$REBUILD" = 0 ] && [ -f "$OUT/complete" ]; then
    echo "$OUT"
    exit 0
fi

[ "$(id -u)" = 0 ] || { log "building the image needs root"; exit 1; }
for t in mmdebstrap mke2fs; do
    command -v $t >/dev/null || { log "missing $t (tools/install-deps mmdebstrap e2fsprogs)"; exit 1; }
done

# apt sources: the host's own entries for $SUITE, $SUITE-updates, $SUITE-security
mapfile -t SOURCES < <(
  {
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1=="deb" {print}'
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: one stanza per blank-line-separated block
        awk 'function flush(){ if (types ~ /(^| )deb( |$)/ && enabled != "no")
                 { n=split(uris,U," "); m=split(suites,S," ");
                   for(i=1;i<=n;i++) for(j=1;j<=m;j++) print "deb " U[i] " " S[j] " " comps }
               types=uris=suites=comps=""; enabled="" }
             /^[ \t]*#/ {next}
             /^[ \t]*$/ {flush(); next}
             { k=tolower($1); sub(/:$/,"",k); $1=""; sub(/^ +/,"");
               if(k=="types")types=$0; else if(k=="uris")uris=$0; else if(k=="suites")suites=$0;
               else if(k=="components")comps=$0; else if(k=="enabled")enabled=tolower($0) }
             END{flush()}' "$f"
    done
  } | awk -v s="$SUITE" '$3==s || $3==s"-updates" || $3==s"-security" || $3==s"/updates"' | sort -u)
[ ${#SOURCES[@]} -gt 0 ] || { log "no apt source for $SUITE in /etc/apt"; exit 1; }

mkdir -p "$CACHE"
BUILD=$(mktemp -d "$CACHE/build.XXXXXX")
cleanup() {
    # never rm -rf a tree that still has something mounted in it
    if grep -q " $BUILD/" /proc/mounts; then
        log "WARNING: mounts left under $BUILD, not removing it"
    else
        rm -rf "$BUILD"
    fi
}
trap cleanup EXIT

T0=$(date +%s)
log "building $OUT: mmdebstrap $SUITE from ${SOURCES[*]}"
mkdir "$BUILD/out"
mmdebstrap --mode=root --format=directory --variant=apt \
    --include="$PACKAGES" \
    --dpkgopt=force-unsafe-io \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --aptopt='Acquire::Languages "none"' \
    --customize-hook="\"$SELF\" --customize \"\$1\"" \
    "$SUITE" "$BUILD/rootfs" "${SOURCES[@]}" > "$BUILD/out/build.log" 2>&1 \
    || { log "mmdebstrap failed:"; tail -30 "$BUILD/out/build.log" >&2; exit 1; }
T1=$(date +%s)

kver=$(ls "$BUILD/rootfs/lib/modules" | sort -V | tail -1)
cp "$BUILD/rootfs/boot/vmlinuz-$kver" "$BUILD/out/vmlinuz"
cp "$BUILD/rootfs/boot/initrd.img-$kver" "$BUILD/out/initrd.img"
cp "$BUILD/rootfs/root/packages.txt" "$BUILD/out/packages.txt"
echo "$CMDLINE" > "$BUILD/out/cmdline"
rootfs_mb=$(du -sm "$BUILD/rootfs" | cut -f1)

truncate -s "$IMG_SIZE" "$BUILD/out/rootfs.img"
mke2fs -q -F -t ext4 -L vmroot -d "$BUILD/rootfs" "$BUILD/out/rootfs.img"
T2=$(date +%s)
echo "kernel=$kver rootfs_MB=$rootfs_mb image_allocated=$(du -h "$BUILD/out/rootfs.img" | cut -f1)" \
     "time_mmdebstrap_s=$((T1-T0)) time_mke2fs_s=$((T2-T1)) time_total_s=$((T2-T0))" > "$BUILD/out/build-info.txt"
touch "$BUILD/out/complete"

# Older images are never used again: remove them, then move the new one in.
for old in "$CACHE"/image-*; do
    [ -e "$old" ] && [ "$old" != "$OUT" ] && rm -rf "$old"
done
rm -rf "$OUT"
mv "$BUILD/out" "$OUT"
log "built in $((T2-T0)) s: $(cat "$OUT/build-info.txt")"
echo "$OUT"
