/* compat_probe: what test_runc_compat.py asks from inside a container,
 * built static (gcc -static) so it runs in a busybox rootfs.
 *   compat_probe syscall N   the errno of syscall N with zero arguments ("errno=ENOSYS"), or "ok"
 *   compat_probe procfs      in a new user, mount and pid namespace (no id
 *                            maps needed), mount a fresh procfs on /proc:
 *                            "procfs: mounted" or "procfs: <errno name>"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *name(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    default: return "other";
    }
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "syscall") == 0) {
        errno = 0;
        long r = syscall(atol(argv[2]), 0, 0, 0, 0, 0, 0);
        printf(r == -1 ? "errno=%s\n" : "ok\n", name(errno));
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "procfs") == 0) {
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) != 0) {
            printf("unshare: %s\n", name(errno));
            return 1;
        }
        pid_t pid = fork();
        if (pid == 0) {
            if (mount("none", "/proc", "proc", 0, NULL) != 0)
                printf("procfs: %s\n", name(errno));
            else
                printf("procfs: mounted\n");
            fflush(stdout);
            _exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
        return 0;
    }
    fprintf(stderr, "usage: compat_probe syscall N | procfs\n");
    return 2;
}
