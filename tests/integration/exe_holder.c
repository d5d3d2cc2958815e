/* The attacker of CVE-2019-5736, as a container process with CAP_SYS_PTRACE:
 * it scans /proc over and over and opens /proc/N/exe (O_PATH) of every
 * process it can see, as it would to keep one and reopen it for writing
 * once the runtime is gone. It writes nothing anywhere but its report.
 *
 *   exe_holder STOP_FILE REPORT_FILE DEV:INO
 *
 * Until STOP_FILE exists: scan. Then REPORT_FILE gets "scans N", "hits N"
 * (exes that were the file DEV:INO: the host's interpreter) and one line
 * "exe TARGET" per distinct target seen. Built by the tests with
 * `gcc -static` (tests/integration/test_escapes.py).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SEEN 256

static char seen[MAX_SEEN][256];
static int seen_count;

static void remember(const char *target)
{
    for (int i = 0; i < seen_count; i++)
        if (strcmp(seen[i], target) == 0)
            return;
    if (seen_count < MAX_SEEN)
        snprintf(seen[seen_count++], sizeof seen[0], "%s", target);
}

int main(int argc, char **argv)
{
    unsigned long bad_dev = 0, bad_ino = 0;
    long scans = 0, hits = 0;

    if (argc < 4 || sscanf(argv[3], "%lu:%lu", &bad_dev, &bad_ino) != 2)
        return 2;
    while (access(argv[1], F_OK) != 0) {
        DIR *proc = opendir("/proc");
        struct dirent *entry;

        if (!proc)
            return 3;
        while ((entry = readdir(proc))) {
            char path[64], link[64], target[256];
            struct stat st;
            ssize_t length;
            int fd;

            if (entry->d_name[0] < '1' || entry->d_name[0] > '9')
                continue;
            snprintf(path, sizeof path, "/proc/%s/exe", entry->d_name);
            fd = open(path, O_PATH | O_CLOEXEC);
            if (fd < 0)
                continue;
            if (fstat(fd, &st) == 0 && st.st_dev == bad_dev && st.st_ino == bad_ino)
                hits++;
            snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
            length = readlink(link, target, sizeof target - 1);
            if (length > 0) {
                target[length] = 0;
                remember(target);
            }
            close(fd);
        }
        closedir(proc);
        scans++;
    }
    FILE *report = fopen(argv[2], "w");
    if (!report)
        return 4;
    fprintf(report, "scans %ld\nhits %ld\n", scans, hits);
    for (int i = 0; i < seen_count; i++)
        fprintf(report, "exe %s\n", seen[i]);
    fclose(report);
    return 0;
}
