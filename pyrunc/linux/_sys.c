/* pyrunc.linux._sys: the system calls `os` lacks, in C.
 *
 * The same functions, signatures and errors as pyrunc/linux/_libc_ctypes.py,
 * the pure-Python fallback used wherever this module was not built.
 * Why C: importing ctypes and declaring the prototypes costs ~2 ms of CPU in
 * every pyrunc command that forks a container process (measured with
 * bench/lifecycle.py's CPU column); this module loads in ~0.1 ms.
 * Each function raises OSError(errno, strerror[, target]) as the fallback does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <sched.h>
#include <signal.h>
#include <linux/capability.h>

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* "O&" converter: str, bytes or path-like to bytes (os.fsencode); None to NULL. */
static int
path_or_none(PyObject *obj, void *out)
{
    PyObject **result = out;
    if (obj == NULL) {  /* clean-up call */
        Py_CLEAR(*result);
        return 1;
    }
    if (obj == Py_None) {
        *result = NULL;
        return 1;
    }
    if (!PyUnicode_FSConverter(obj, result))
        return 0;
    return Py_CLEANUP_SUPPORTED;
}

static const char *
str_of(PyObject *bytes)
{
    return bytes ? PyBytes_AS_STRING(bytes) : NULL;
}

/* OSError(errno, strerror, target); no target when it is NULL or None. */
static PyObject *
fail(PyObject *target)
{
    if (target && target != Py_None)
        return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, target);
    return PyErr_SetFromErrno(PyExc_OSError);
}

static PyObject *
sys_mount(PyObject *self, PyObject *args)
{
    PyObject *source = NULL, *target = NULL, *fstype = NULL, *data = NULL, *target_obj;
    unsigned long flags = 0;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "O&OO&|kO&:mount", path_or_none, &source, &target_obj, path_or_none, &fstype,
                          &flags, path_or_none, &data))
        return NULL;
    if (!path_or_none(target_obj, &target))
        goto done;
    if (mount(str_of(source), str_of(target), str_of(fstype), flags, str_of(data)) != 0)
        fail(target_obj);
    else
        result = Py_NewRef(Py_None);
done:
    Py_XDECREF(source);
    Py_XDECREF(target);
    Py_XDECREF(fstype);
    Py_XDECREF(data);
    return result;
}

static PyObject *
sys_umount2(PyObject *self, PyObject *args)
{
    PyObject *target_obj, *target = NULL;
    int flags = 0;
    if (!PyArg_ParseTuple(args, "O|i:umount2", &target_obj, &flags))
        return NULL;
    if (!path_or_none(target_obj, &target))
        return NULL;
    int rc = umount2(str_of(target), flags);
    Py_XDECREF(target);
    if (rc != 0)
        return fail(target_obj);
    Py_RETURN_NONE;
}

static PyObject *
sys_unshare(PyObject *self, PyObject *args)
{
    int flags;
    if (!PyArg_ParseTuple(args, "i:unshare", &flags))
        return NULL;
    if (unshare(flags) != 0)
        return fail(NULL);
    Py_RETURN_NONE;
}

static PyObject *
sys_setns(PyObject *self, PyObject *args)
{
    int fd, nstype = 0;
    if (!PyArg_ParseTuple(args, "i|i:setns", &fd, &nstype))
        return NULL;
    if (setns(fd, nstype) != 0)
        return fail(NULL);
    Py_RETURN_NONE;
}

static PyObject *
sys_sethostname(PyObject *self, PyObject *args)
{
    const char *name;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "s#:sethostname", &name, &len))
        return NULL;
    if (sethostname(name, (size_t)len) != 0)
        return fail(NULL);
    Py_RETURN_NONE;
}

static PyObject *
sys_setdomainname(PyObject *self, PyObject *args)
{
    const char *name;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "s#:setdomainname", &name, &len))
        return NULL;
    if (setdomainname(name, (size_t)len) != 0)
        return fail(NULL);
    Py_RETURN_NONE;
}

static PyObject *
sys_prctl(PyObject *self, PyObject *args)
{
    int option;
    unsigned long a2 = 0, a3 = 0, a4 = 0, a5 = 0;
    if (!PyArg_ParseTuple(args, "i|kkkk:prctl", &option, &a2, &a3, &a4, &a5))
        return NULL;
    int result = prctl(option, a2, a3, a4, a5);
    if (result < 0)
        return fail(NULL);
    return PyLong_FromLong(result);
}

/* The effective, permitted and inheritable sets, exactly (64-bit masks). */
static PyObject *
sys_capset(PyObject *self, PyObject *args)
{
    unsigned long long eff, perm, inh;
    if (!PyArg_ParseTuple(args, "KKK:capset", &eff, &perm, &inh))
        return NULL;
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {
        {(uint32_t)eff, (uint32_t)perm, (uint32_t)inh},
        {(uint32_t)(eff >> 32), (uint32_t)(perm >> 32), (uint32_t)(inh >> 32)},
    };
    if (syscall(SYS_capset, &header, data) != 0)
        return fail(NULL);
    Py_RETURN_NONE;
}

static PyObject *
sys_pivot_root(PyObject *self, PyObject *args)
{
    PyObject *new_obj, *new_root = NULL, *put_old = NULL;
    if (!PyArg_ParseTuple(args, "OO&:pivot_root", &new_obj, PyUnicode_FSConverter, &put_old))
        return NULL;
    if (!PyUnicode_FSConverter(new_obj, &new_root)) {
        Py_DECREF(put_old);
        return NULL;
    }
    long rc = syscall(SYS_pivot_root, PyBytes_AS_STRING(new_root), PyBytes_AS_STRING(put_old));
    Py_DECREF(new_root);
    Py_DECREF(put_old);
    if (rc != 0)
        return fail(new_obj);
    Py_RETURN_NONE;
}

static PyObject *
sys_close_range(PyObject *self, PyObject *args)
{
    unsigned int first, last, flags = 0;
    if (!PyArg_ParseTuple(args, "II|I:close_range", &first, &last, &flags))
        return NULL;
    if (syscall(SYS_close_range, first, last, flags) != 0)
        return fail(NULL);
    Py_RETURN_NONE;
}

static PyObject *
sys_openat2(PyObject *self, PyObject *args)
{
    int dir_fd;
    PyObject *path_obj, *path = NULL;
    unsigned long long flags, resolve, mode = 0;
    if (!PyArg_ParseTuple(args, "iOKK|K:openat2", &dir_fd, &path_obj, &flags, &resolve, &mode))
        return NULL;
    if (!PyUnicode_FSConverter(path_obj, &path))
        return NULL;
    struct { uint64_t flags, mode, resolve; } how = {flags | O_CLOEXEC, mode, resolve};
    long fd = syscall(SYS_openat2, dir_fd, PyBytes_AS_STRING(path), &how, sizeof(how));
    Py_DECREF(path);
    if (fd < 0)
        return fail(path_obj);
    return PyLong_FromLong(fd);
}

static PyObject *
sys_fstatfs_type(PyObject *self, PyObject *args)
{
    int fd;
    struct statfs st;
    if (!PyArg_ParseTuple(args, "i:fstatfs_type", &fd))
        return NULL;
    if (fstatfs(fd, &st) != 0)
        return fail(NULL);
    return PyLong_FromLong((long)st.f_type);
}

static PyObject *
sys_mount_setattr(PyObject *self, PyObject *args)
{
    int dir_fd;
    PyObject *path_obj, *path = NULL;
    unsigned int flags;
    unsigned long long attr_set, attr_clr = 0, propagation = 0, userns_fd = 0;
    if (!PyArg_ParseTuple(args, "iOIK|KKK:mount_setattr", &dir_fd, &path_obj, &flags, &attr_set, &attr_clr,
                          &propagation, &userns_fd))
        return NULL;
    if (!PyUnicode_FSConverter(path_obj, &path))
        return NULL;
    struct { uint64_t attr_set, attr_clr, propagation, userns_fd; } attr = {attr_set, attr_clr, propagation,
                                                                             userns_fd};
    long rc = syscall(SYS_mount_setattr, dir_fd, PyBytes_AS_STRING(path), flags, &attr, sizeof(attr));
    Py_DECREF(path);
    if (rc != 0)
        return fail(path_obj);
    Py_RETURN_NONE;
}

static PyObject *
sys_open_tree(PyObject *self, PyObject *args)
{
    int dir_fd;
    unsigned int flags;
    PyObject *path_obj, *path = NULL;
    if (!PyArg_ParseTuple(args, "iOI:open_tree", &dir_fd, &path_obj, &flags))
        return NULL;
    if (!PyUnicode_FSConverter(path_obj, &path))
        return NULL;
    long fd = syscall(SYS_open_tree, dir_fd, PyBytes_AS_STRING(path), flags);
    Py_DECREF(path);
    if (fd < 0)
        return fail(path_obj);
    return PyLong_FromLong(fd);
}

static PyObject *
sys_move_mount(PyObject *self, PyObject *args)
{
    int from_fd, to_fd;
    unsigned int flags;
    PyObject *from_obj, *to_obj, *from_path = NULL, *to_path = NULL;
    if (!PyArg_ParseTuple(args, "iOiOI:move_mount", &from_fd, &from_obj, &to_fd, &to_obj, &flags))
        return NULL;
    if (!PyUnicode_FSConverter(from_obj, &from_path))
        return NULL;
    if (!PyUnicode_FSConverter(to_obj, &to_path)) {
        Py_DECREF(from_path);
        return NULL;
    }
    long rc = syscall(SYS_move_mount, from_fd, PyBytes_AS_STRING(from_path), to_fd, PyBytes_AS_STRING(to_path),
                      flags);
    Py_DECREF(from_path);
    Py_DECREF(to_path);
    if (rc != 0)
        return fail(to_obj);
    Py_RETURN_NONE;
}

static PyObject *
sys_join_session_keyring(PyObject *self, PyObject *args)
{
    PyObject *name = NULL;
    if (!PyArg_ParseTuple(args, "O&:join_session_keyring", path_or_none, &name))
        return NULL;
    long result = syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, str_of(name));
    Py_XDECREF(name);
    if (result < 0)
        return fail(NULL);
    return PyLong_FromLong(result);
}

static PyObject *
sys_sched_setattr(PyObject *self, PyObject *args)
{
    int pid;
    Py_buffer attr;
    if (!PyArg_ParseTuple(args, "iy*:sched_setattr", &pid, &attr))
        return NULL;
    /* The kernel may write the size it expects back: give it a copy. */
    char buf[256] = {0};
    memcpy(buf, attr.buf, attr.len < (Py_ssize_t)sizeof(buf) ? (size_t)attr.len : sizeof(buf));
    PyBuffer_Release(&attr);
    if (syscall(SYS_sched_setattr, pid, buf, 0) != 0)
        return fail(NULL);
    Py_RETURN_NONE;
}

static PyObject *
sys_ioprio_set(PyObject *self, PyObject *args)
{
    int which, who, ioprio;
    if (!PyArg_ParseTuple(args, "iii:ioprio_set", &which, &who, &ioprio))
        return NULL;
    if (syscall(SYS_ioprio_set, which, who, ioprio) != 0)
        return fail(NULL);
    Py_RETURN_NONE;
}

static PyObject *
sys_personality(PyObject *self, PyObject *args)
{
    unsigned long persona;
    if (!PyArg_ParseTuple(args, "k:personality", &persona))
        return NULL;
    if (personality(persona) == -1)
        return fail(NULL);
    Py_RETURN_NONE;
}

struct sock_filter_ { uint16_t code; uint8_t jt, jf; uint32_t k; };
struct sock_fprog_ { unsigned short len; struct sock_filter_ *filter; };

static PyObject *
sys_seccomp_set_mode_filter(PyObject *self, PyObject *args)
{
    unsigned int flags;
    Py_buffer bpf;
    if (!PyArg_ParseTuple(args, "Iy*:seccomp_set_mode_filter", &flags, &bpf))
        return NULL;
    struct sock_fprog_ prog = {(unsigned short)(bpf.len / 8), (struct sock_filter_ *)bpf.buf};
    long result = syscall(SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, flags, &prog);
    PyBuffer_Release(&bpf);
    if (result < 0)
        return fail(NULL);
    return PyLong_FromLong(result);
}

/* bpf(cmd, attr, pointers=()): bpf(2) with `attr` (a bytearray, the
 * union bpf_attr's prefix the command reads) as given, after writing into it
 * the address of each buffer of `pointers`, a sequence of (offset, writable
 * buffer): the program, its license, the verifier's log, the id array. */
#define BPF_MAX_POINTERS 4
static PyObject *
sys_bpf(PyObject *self, PyObject *args)
{
    int cmd;
    Py_buffer attr;
    PyObject *pointers = NULL, *seq = NULL, *result = NULL;
    Py_buffer views[BPF_MAX_POINTERS];
    Py_ssize_t held = 0;
    if (!PyArg_ParseTuple(args, "iw*|O:bpf", &cmd, &attr, &pointers))
        return NULL;
    if (pointers != NULL) {
        seq = PySequence_Fast(pointers, "bpf: pointers must be a sequence of (offset, buffer)");
        if (seq == NULL)
            goto done;
        if (PySequence_Fast_GET_SIZE(seq) > BPF_MAX_POINTERS) {
            PyErr_SetString(PyExc_ValueError, "bpf: too many pointers");
            goto done;
        }
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
            Py_ssize_t offset;
            PyObject *buffer;
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "nO:bpf pointer", &offset, &buffer))
                goto done;
            if (offset < 0 || offset + 8 > attr.len) {
                PyErr_SetString(PyExc_ValueError, "bpf: pointer offset outside attr");
                goto done;
            }
            if (PyObject_GetBuffer(buffer, &views[held], PyBUF_WRITABLE) != 0)
                goto done;
            uint64_t address = (uint64_t)(uintptr_t)views[held].buf;
            held++;
            memcpy((char *)attr.buf + offset, &address, sizeof(address));
        }
    }
    long rc = syscall(SYS_bpf, cmd, attr.buf, (unsigned int)attr.len);
    if (rc < 0)
        fail(NULL);
    else
        result = PyLong_FromLong(rc);
done:
    while (held > 0)
        PyBuffer_Release(&views[--held]);
    Py_XDECREF(seq);
    PyBuffer_Release(&attr);
    return result;
}

/* Where glibc keeps the calling thread's tid (struct pthread.tid, whose
 * offset it publishes for debuggers as _thread_db_pthread_tid): its fork()
 * has the kernel write the child's tid there, and so must clone3. */
static void *
own_tid_address(void)
{
    const uint32_t *desc = dlsym(RTLD_DEFAULT, "_thread_db_pthread_tid");
    if (desc == NULL || desc[0] != 32)
        return NULL;
    return (char *)pthread_self() + desc[2];
}

struct clone_args_ {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
        cgroup;
};

/* clone3_fork(namespace_flags, cgroup_dir_fd): os.fork() by clone3; the
 * caller (_libc.clone3) has checked that it is single-threaded. */
static PyObject *
sys_clone3_fork(PyObject *self, PyObject *args)
{
    unsigned long long namespace_flags;
    int cgroup_fd;
    if (!PyArg_ParseTuple(args, "Ki:clone3_fork", &namespace_flags, &cgroup_fd))
        return NULL;
    void *tid = own_tid_address();
    if (tid == NULL) {
        errno = ENOSYS;
        return fail(NULL);
    }
    struct clone_args_ cl = {0};
    cl.flags = namespace_flags | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
    if (cgroup_fd >= 0) {
        cl.flags |= CLONE_INTO_CGROUP;
        cl.cgroup = (uint64_t)cgroup_fd;
    }
    cl.child_tid = (uint64_t)(uintptr_t)tid;
    cl.exit_signal = SIGCHLD;
    PyOS_BeforeFork();
    long pid = syscall(SYS_clone3, &cl, sizeof(cl));
    if (pid == 0) {
        PyOS_AfterFork_Child();
        return PyLong_FromLong(0);
    }
    int saved = errno;
    PyOS_AfterFork_Parent();
    if (pid < 0) {
        errno = saved;
        return fail(NULL);
    }
    return PyLong_FromLong(pid);
}

static PyMethodDef methods[] = {
    {"mount", sys_mount, METH_VARARGS, "mount(source, target, fstype, flags=0, data=None)"},
    {"umount2", sys_umount2, METH_VARARGS, "umount2(target, flags=0)"},
    {"unshare", sys_unshare, METH_VARARGS, "unshare(flags)"},
    {"setns", sys_setns, METH_VARARGS, "setns(fd, nstype=0)"},
    {"sethostname", sys_sethostname, METH_VARARGS, "sethostname(name)"},
    {"setdomainname", sys_setdomainname, METH_VARARGS, "setdomainname(name)"},
    {"prctl", sys_prctl, METH_VARARGS, "prctl(option, arg2=0, arg3=0, arg4=0, arg5=0) -> int"},
    {"capset", sys_capset, METH_VARARGS, "capset(effective, permitted, inheritable) (masks)"},
    {"pivot_root", sys_pivot_root, METH_VARARGS, "pivot_root(new_root, put_old)"},
    {"close_range", sys_close_range, METH_VARARGS, "close_range(first, last, flags=0)"},
    {"openat2", sys_openat2, METH_VARARGS, "openat2(dir_fd, path, flags, resolve, mode=0) -> fd (O_CLOEXEC)"},
    {"fstatfs_type", sys_fstatfs_type, METH_VARARGS, "fstatfs_type(fd) -> f_type"},
    {"mount_setattr", sys_mount_setattr, METH_VARARGS,
     "mount_setattr(dir_fd, path, flags, attr_set, attr_clr=0, propagation=0, userns_fd=0)"},
    {"open_tree", sys_open_tree, METH_VARARGS, "open_tree(dir_fd, path, flags) -> fd"},
    {"move_mount", sys_move_mount, METH_VARARGS, "move_mount(from_fd, from_path, to_fd, to_path, flags)"},
    {"join_session_keyring", sys_join_session_keyring, METH_VARARGS, "join_session_keyring(name) -> serial"},
    {"sched_setattr", sys_sched_setattr, METH_VARARGS, "sched_setattr(pid, attr)"},
    {"ioprio_set", sys_ioprio_set, METH_VARARGS, "ioprio_set(which, who, ioprio)"},
    {"personality", sys_personality, METH_VARARGS, "personality(persona)"},
    {"seccomp_set_mode_filter", sys_seccomp_set_mode_filter, METH_VARARGS,
     "seccomp_set_mode_filter(flags, bpf) -> listener fd or 0"},
    {"bpf", sys_bpf, METH_VARARGS, "bpf(cmd, attr, pointers=()) -> int (attr: bytearray; pointers: (offset, buffer))"},
    {"clone3_fork", sys_clone3_fork, METH_VARARGS, "clone3_fork(namespace_flags, cgroup_dir_fd) -> pid"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "pyrunc.linux._sys",
    "The system calls os lacks, in C (pure-Python fallback: pyrunc.linux._libc_ctypes).", -1, methods,
};

PyMODINIT_FUNC
PyInit__sys(void)
{
    return PyModule_Create(&module);
}
