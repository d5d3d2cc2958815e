#!/bin/bash
# setup-engines.sh - install the container engines from Debian bookworm and
# build the two test images offline (no image registry is reachable).
#
# Usage: setup-engines.sh [--no-apt] [--force]
#   --no-apt   skip apt-get update/install
#   --force    apt-get install and rebuild the images even when present
# Idempotent: apt is skipped when every package below is installed, and the
# images are not rebuilt when all archives exist (and the stamp file
# images/.complete, written last, is there). `make e2e` / `make e2e-ci` call it.
#
# Result (all under $E2E_BASE, default /var/lib/pyrunc-e2e):
#   images/busybox.rootfs/          busybox-static rootfs (bin/busybox + applet links)
#   images/hello-world.rootfs/      static C binary /hello (CMD ["/hello"])
#   images/oci/                     OCI image layout with tags busybox, hello-world (umoci)
#   images/busybox.docker.tar       docker-archive, ref docker.io/library/busybox:latest
#   images/hello-world.docker.tar   docker-archive, ref docker.io/library/hello-world:latest
#   images/e2e-pause.docker.tar     CRI sandbox image docker.io/library/e2e-pause:latest
#   images/*.oci.tar                the same as oci-archive
# The e2e-*.sh scripts load those archives into their private engine stores
# (podman load / docker load / ctr images import), so nothing touches the
# engines' default stores.
#
# Never starts a daemon: Debian's docker.io/containerd packages try to start
# services in postinst; /usr/sbin/policy-rc.d (exit 101) is created for the
# install if missing and removed again afterwards.
set -euo pipefail

E2E_BASE=${E2E_BASE:-/var/lib/pyrunc-e2e}
IMG=$E2E_BASE/images
DO_APT=1; FORCE=0
for a in "$@"; do
    case $a in
        --no-apt) DO_APT=0 ;;
        --force) FORCE=1 ;;
        *) echo "usage: $0 [--no-apt] [--force]"; exit 2 ;;
    esac
done

PKGS="podman conmon containerd docker.io containernetworking-plugins umoci skopeo
      buildah fuse-overlayfs slirp4netns uidmap catatonit tini iptables expect
      golang-github-containers-common netavark aardvark-dns busybox-static runc
      crun jq tmux gcc libc6-dev python3 python3-grpcio util-linux procps"

log() { echo "[setup] $*"; }

# every package installed ("ii")? then there is nothing for apt to do
all_installed() {
    local p st
    for p in $PKGS; do
        st=$(dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null) || return 1
        [ "${st:0:2}" = ii ] || return 1
    done
    return 0
}
if [ "$DO_APT" = 1 ] && [ "$FORCE" = 0 ] && all_installed; then
    log "all packages present, skipping apt"
    DO_APT=0
fi

if [ "$DO_APT" = 1 ]; then
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    log "apt-get update"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    log "apt-get install $(echo $PKGS)"
    # shellcheck disable=SC2086
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $PKGS >/tmp/pyrunc-setup-apt.log 2>&1 \
        || { tail -20 /tmp/pyrunc-setup-apt.log; exit 1; }
    [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    # cri-tools (crictl) is not packaged in bookworm; report it.
    apt-cache policy cri-tools 2>/dev/null | grep -q Candidate || log "cri-tools/crictl: not available in this Debian release"
fi

log "versions:"
for c in "runc --version" "crun --version" "podman --version" "conmon --version" \
         "containerd --version" "ctr --version" "dockerd --version" "/usr/bin/docker --version" \
         "umoci --version" "skopeo --version"; do
    printf '  %-24s %s\n' "${c%% *}" "$($c 2>/dev/null | head -1)"
done
printf '  %-24s %s\n' containernetworking "$(dpkg-query -W -f '${Version}' containernetworking-plugins 2>/dev/null)"

images_done() {
    local t
    [ -f "$IMG/.complete" ] || return 1
    for t in busybox hello-world e2e-pause; do
        [ -s "$IMG/$t.docker.tar" ] && [ -s "$IMG/$t.oci.tar" ] || return 1
    done
    return 0
}
if [ "$FORCE" = 0 ] && images_done; then
    log "images present in $IMG, not rebuilt (--force rebuilds)"
    exit 0
fi
rm -f "$IMG/.complete"

mkdir -p "$IMG"
BB=$(command -v busybox || true)
[ -x /bin/busybox ] && BB=/bin/busybox
file -L "$BB" | grep -q 'statically linked' || { echo "busybox is not static: $BB (install busybox-static)"; exit 1; }

make_base_rootfs() {  # $1 = dir
    local r=$1
    rm -rf "$r"; mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root,var/tmp,run}
    chmod 1777 "$r/tmp" "$r/var/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
    : > "$r/etc/hosts"; : > "$r/etc/resolv.conf"; echo e2e > "$r/etc/hostname"
}

# ---- busybox rootfs
R=$IMG/busybox.rootfs
log "building $R"
make_base_rootfs "$R"
cp "$BB" "$R/bin/busybox"
for app in $("$BB" --list-full); do
    [ "$app" = bin/busybox ] && continue
    mkdir -p "$R/$(dirname "$app")"
    ln -sf /bin/busybox "$R/$app"
done
[ -e "$R/bin/sh" ] || ln -sf busybox "$R/bin/sh"

# ---- hello-world rootfs: a static binary, like docker's hello-world
H=$IMG/hello-world.rootfs
log "building $H"
rm -rf "$H"; mkdir -p "$H"
cat > "$IMG/hello.c" <<'EOF'
#include <stdio.h>
#include <unistd.h>
int main(void) {
    printf("\nHello from pyrunc e2e!\n"
           "This message shows that your installation appears to be working correctly.\n"
           "(pid in container: %d)\n", (int)getpid());
    return 0;
}
EOF
if gcc -static -Os -o "$H/hello" "$IMG/hello.c" 2>/dev/null; then
    strip "$H/hello" 2>/dev/null || true
    HELLO_CMD=/hello
else
    log "gcc -static failed; hello-world falls back to a busybox script"
    make_base_rootfs "$H"; cp "$BB" "$H/bin/busybox"; ln -sf busybox "$H/bin/sh"
    printf '#!/bin/sh\necho\necho "Hello from pyrunc e2e!"\necho "This message shows that your installation appears to be working correctly."\n' > "$H/hello"
    chmod +x "$H/hello"; HELLO_CMD=/hello
fi
mkdir -p "$H"/{dev,proc,sys,etc}
: > "$H/etc/hosts"; : > "$H/etc/resolv.conf"

# ---- e2e-pause rootfs: CRI sandbox ("pause") image, a static C pause(2) loop
PZ=$IMG/e2e-pause.rootfs
log "building $PZ"
rm -rf "$PZ"; mkdir -p "$PZ"/{dev,proc,sys,etc}
: > "$PZ/etc/hosts"; : > "$PZ/etc/resolv.conf"
cat > "$IMG/pause.c" <<'EOF2'
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
static void die(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) ; }
int main(void) {
    signal(SIGINT, die); signal(SIGTERM, die); signal(SIGCHLD, reap);
    for (;;) pause();
}
EOF2
if gcc -static -Os -o "$PZ/pause" "$IMG/pause.c" 2>/dev/null; then
    strip "$PZ/pause" 2>/dev/null || true; PAUSE_CMD=(/pause)
else
    mkdir -p "$PZ/bin"; cp "$BB" "$PZ/bin/busybox"; PAUSE_CMD=(/bin/busybox sleep 2147483647)
fi

# ---- OCI layout via umoci, then docker-archive via skopeo
O=$IMG/oci
rm -rf "$O" "$IMG/.umoci-bundle"
umoci init --layout "$O"
build_oci() {  # $1 tag  $2 rootfs  $3.. cmd
    local tag=$1 rootfs=$2; shift 2
    local b=$IMG/.umoci-bundle
    umoci new --image "$O:$tag"
    rm -rf "$b"
    umoci unpack --image "$O:$tag" "$b" >/dev/null
    cp -a "$rootfs/." "$b/rootfs/"
    umoci repack --image "$O:$tag" "$b"
    rm -rf "$b"
    local cfg=(--config.cmd "$1"); shift
    for a in "$@"; do cfg+=(--config.cmd "$a"); done
    umoci config --image "$O:$tag" --architecture amd64 --os linux \
        --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --config.workingdir / "${cfg[@]}"
    umoci gc --layout "$O"
}
log "OCI layout $O"
build_oci busybox "$R" /bin/sh
build_oci hello-world "$H" "$HELLO_CMD"
build_oci e2e-pause "$PZ" "${PAUSE_CMD[@]}"

for t in busybox hello-world e2e-pause; do
    rm -f "$IMG/$t.docker.tar" "$IMG/$t.oci.tar"
    skopeo copy --quiet "oci:$O:$t" "docker-archive:$IMG/$t.docker.tar:docker.io/library/$t:latest"
    skopeo copy --quiet "oci:$O:$t" "oci-archive:$IMG/$t.oci.tar:docker.io/library/$t:latest"
done
ls -la "$IMG"
touch "$IMG/.complete"
log "done. Images: docker.io/library/busybox:latest (CMD /bin/sh), docker.io/library/hello-world:latest (CMD $HELLO_CMD)"
