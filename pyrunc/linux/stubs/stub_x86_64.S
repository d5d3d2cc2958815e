# The stub (x86_64): what every container process is, between pyrunc's
# Python and the container's program. Run from a sealed memfd as
#     argv = ["pyrunc-stub", CONTROL, path, arg0, arg1, ...], envp = the program's
# CONTROL is seven decimal fields, "flags,sync,tty,bpf,fifo,status,cwd", an
# empty field meaning none (-1). In this order it:
#   cwd >= 0       fchdir(cwd), close(cwd)
#   flags & 1      FORK: clone(SIGCHLD). The parent sends {"type":"pid","pid":N}
#                  on sync, closes its fds and exits 0 (flags & 8, REAP: waits
#                  for the child first and exits with its status, 128+signal);
#                  the child, born in the pid namespace pyrunc set for children,
#                  goes on. So no Python process ever appears in the container's
#                  pid namespace, and this one holds only the fds below.
#                  prctl(PR_SET_DUMPABLE, 0): its /proc entries (fds) stay closed
#   flags & 16     MOUNT: mount(arg0, path, arg1, status, arg2) and exit 0 (the
#                  status field holds the mount flags): procfs for the pid
#                  namespace the child is in, where the kernel has no procfs
#                  "pidns" option
#   flags & 4      SETSID: setsid()
#   tty >= 0       ioctl(tty, TIOCSCTTY), tty onto fds 0-2
#   flags & 2      WAIT: handlers for the signals whose default is to end a
#                  process (pid 1 of a namespace gets no default action): exit
#                  128+signal
#   bpf >= 0       seccomp(SET_MODE_FILTER) of the program in that memfd
#                  ([u32 flags][u32 count][count x 8 bytes]); with
#                  NEW_LISTENER, the listener fd goes to sync as
#                  {"type":"seccomp-listener"} before anything else (even
#                  closing the memfd: a notified syscall before the agent
#                  has the listener would never be answered). Last but the
#                  wait, so the profile needs to allow only what is left.
#   sync >= 0      {"type":"ready"}, close(sync)
#   flags & 2      WAIT: poll the fifo until `pyrunc start` writes a byte, read
#                  it; FD_CLOEXEC on status (execve closes it: start sees the
#                  program run); close(fifo). Exits 1 on EOF (no writer left).
#   execve(path, &arg0, envp): 127 when the program is not found, 126 else.
# A failing step sends {"type":"stub-error","step":S,"errno":E} on sync and
# exits 1 (steps: 1 fork, 2 setsid, 3 tty, 4 seccomp, 5 listener, 6 cwd,
# 7 mount).
# Any other argv[0] (a container running /proc/self/exe) or a malformed
# CONTROL exits 126 at once. pyrunc/linux/trampoline.py holds the bytes GNU as
# makes of this file; tests/unit/test_trampoline.py re-assembles and compares.
.intel_syntax noprefix
.globl _start

# the frame, at r15
.set F_FLAGS, 0
.set F_SYNC, 8
.set F_TTY, 16
.set F_BPF, 24
.set F_FIFO, 32
.set F_STATUS, 40
.set F_CWD, 48
.set F_MSG, 64            # 128 bytes: a message being built
.set F_ACT, 192           # struct k_sigaction
.set F_POLL, 224          # struct pollfd
.set F_BYTE, 232
.set F_PROG, 240          # struct sock_fprog
.set F_IOV, 256           # struct iovec
.set F_MSGHDR, 272        # struct msghdr
.set F_CMSG, 328          # cmsghdr + one fd
.set F_STATUS_WORD, 352   # wait4's status
.set F_DIGITS, 383        # last byte of the digit scratch (360..383)
.set FRAME, 384

_start:
    mov rbp, rsp                        # [rbp]: argc, [rbp+8]: argv[0] ...
    sub rsp, FRAME
    mov r15, rsp
    mov rsi, [rbp+8]                    # argv[0] must be "pyrunc-stub"
    test rsi, rsi
    jz refuse
    movabs rax, 0x732d636e75727970      # "pyrunc-s"
    cmp [rsi], rax
    jne refuse
    cmp dword ptr [rsi+8], 0x00627574   # "tub\0"
    jne refuse
    cmp qword ptr [rbp+24], 0           # a path
    je refuse
    mov rsi, [rbp+16]                   # CONTROL: seven fields
    test rsi, rsi
    jz refuse
    xor ecx, ecx
next_field:
    xor eax, eax
    xor edx, edx
digit:
    movzx r8d, byte ptr [rsi]
    sub r8d, 48
    cmp r8d, 9
    ja end_field                        # not a digit (unsigned: below '0' too)
    imul rax, rax, 10
    add rax, r8
    inc edx
    inc rsi
    cmp edx, 9                          # no fd or flag has more digits
    ja refuse
    jmp digit
end_field:
    test edx, edx
    jnz 1f
    mov rax, -1                         # empty: none
1:  mov [r15+rcx*8], rax
    inc ecx
    cmp ecx, 7
    je parsed
    cmp byte ptr [rsi], 44              # ','
    jne refuse
    inc rsi
    jmp next_field
parsed:
    cmp byte ptr [rsi], 0
    jne refuse
    cmp qword ptr [r15+F_FLAGS], -1
    jne 1f
    mov qword ptr [r15+F_FLAGS], 0
1:
    mov rdi, [r15+F_CWD]                # cwd
    test rdi, rdi
    js no_cwd
    mov eax, 81                         # fchdir(cwd)
    syscall
    mov esi, 6
    test rax, rax
    js fail
    mov rdi, [r15+F_CWD]
    mov eax, 3
    syscall
no_cwd:
    test byte ptr [r15+F_FLAGS], 1      # FORK
    jz child
    mov edi, 17                         # clone(SIGCHLD, 0, 0, 0, 0): a plain fork, which
    xor esi, esi                        # profiles restricting clone's flags allow
    xor edx, edx
    xor r10d, r10d
    xor r8d, r8d
    mov eax, 56
    syscall
    mov esi, 1
    test rax, rax
    js fail
    jz child
    mov r12, rax                        # parent: report the child's pid (ours: the host's view)
    lea rdi, [r15+F_MSG]
    lea rsi, [rip+msg_pid]
    call append_str
    mov rax, r12
    call append_num
    mov byte ptr [rdi], 125             # '}'
    inc rdi
    call send_msg
    mov rbx, 8                          # close sync, tty, bpf, fifo, status: the child has them
1:  mov rdi, [r15+rbx]
    test rdi, rdi
    js 2f
    mov eax, 3
    syscall
2:  add rbx, 8
    cmp rbx, 48
    jb 1b
    xor edi, edi
    test byte ptr [r15+F_FLAGS], 8      # REAP
    jz exit
3:  mov rdi, r12                        # wait4(child, &status, 0, NULL)
    lea rsi, [r15+F_STATUS_WORD]
    xor edx, edx
    xor r10d, r10d
    mov eax, 61
    syscall
    cmp rax, -4                         # -EINTR
    je 3b
    mov edi, 1
    test rax, rax
    js exit
    mov eax, [r15+F_STATUS_WORD]
    mov edi, eax
    and edi, 0x7f
    jz 4f
    add edi, 128                        # killed by a signal: 128+signal
    jmp exit
4:  shr eax, 8                          # exited: its code
    movzx edi, al
    jmp exit

child:
    mov edi, 4                          # prctl(PR_SET_DUMPABLE, 0)
    xor esi, esi
    mov eax, 157
    syscall
    test byte ptr [r15+F_FLAGS], 16     # MOUNT
    jz 1f
    mov rdi, [rbp+32]                   # mount(argv[3], argv[2], argv[4], status, argv[5])
    mov rsi, [rbp+24]
    mov rdx, [rbp+40]
    mov r10, [r15+F_STATUS]
    mov r8, [rbp+48]
    mov eax, 165
    syscall
    mov esi, 7
    test rax, rax
    js fail
    xor edi, edi
    jmp exit
1:    test byte ptr [r15+F_FLAGS], 4      # SETSID
    jz 1f
    mov eax, 112
    syscall
    mov esi, 2
    test rax, rax
    js fail
1:  mov rdi, [r15+F_TTY]
    test rdi, rdi
    js no_tty
    mov esi, 0x540E                     # ioctl(tty, TIOCSCTTY, 0)
    xor edx, edx
    mov eax, 16
    syscall
    mov esi, 3
    test rax, rax
    js fail
    xor ebx, ebx
2:  mov rdi, [r15+F_TTY]                # dup2(tty, 0..2)
    mov esi, ebx
    mov eax, 33
    syscall
    mov esi, 3
    test rax, rax
    js fail
    inc ebx
    cmp ebx, 3
    jb 2b
    mov rdi, [r15+F_TTY]
    cmp rdi, 2
    jbe no_tty
    mov eax, 3
    syscall
no_tty:
    test byte ptr [r15+F_FLAGS], 2      # WAIT: signal handlers
    jz no_handlers
    lea rax, [rip+on_signal]
    mov [r15+F_ACT], rax                # sa_handler
    mov qword ptr [r15+F_ACT+8], 0x04000000   # sa_flags = SA_RESTORER
    mov [r15+F_ACT+16], rax             # sa_restorer (never returned to: the handler exits)
    mov qword ptr [r15+F_ACT+24], 0     # sa_mask
    lea rbx, [rip+signals]
1:  movzx edi, byte ptr [rbx]
    test edi, edi
    jz no_handlers
    lea rsi, [r15+F_ACT]
    xor edx, edx
    mov r10d, 8
    mov eax, 13                         # rt_sigaction(sig, &act, NULL, 8)
    syscall
    inc rbx
    jmp 1b
no_handlers:
    mov r8, [r15+F_BPF]
    test r8, r8
    js no_seccomp
    xor edi, edi                        # mmap(NULL, 36864, PROT_READ, MAP_PRIVATE, bpf, 0)
    mov esi, 36864                      # the header and BPF_MAXINSNS (4096) instructions
    mov edx, 1
    mov r10d, 2
    xor r9d, r9d
    mov eax, 9
    syscall
    mov esi, 4
    cmp rax, -4096
    ja fail
    mov r13, rax
    mov eax, [r13+4]                    # sock_fprog {len, filter}
    mov [r15+F_PROG], ax
    lea rax, [r13+8]
    mov [r15+F_PROG+8], rax
    mov edi, 1                          # seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)
    mov esi, [r13]
    lea rdx, [r15+F_PROG]
    mov eax, 317
    syscall
    mov esi, 4
    test rax, rax
    js fail
    mov r14, rax                        # the listener fd with NEW_LISTENER
    test dword ptr [r13], 8             # SECCOMP_FILTER_FLAG_NEW_LISTENER
    jz close_bpf
    # The listener goes to the agent first: until it has it, any syscall
    # the profile notifies (close, even) would wait for an answer forever.
    lea rax, [rip+msg_listener]         # sendmsg(sync, {payload, SCM_RIGHTS listener})
    mov [r15+F_IOV], rax
    mov qword ptr [r15+F_IOV+8], msg_listener_end - msg_listener
    mov qword ptr [r15+F_MSGHDR], 0
    mov qword ptr [r15+F_MSGHDR+8], 0
    lea rax, [r15+F_IOV]
    mov [r15+F_MSGHDR+16], rax
    mov qword ptr [r15+F_MSGHDR+24], 1
    lea rax, [r15+F_CMSG]
    mov [r15+F_MSGHDR+32], rax
    mov qword ptr [r15+F_MSGHDR+40], 24
    mov qword ptr [r15+F_MSGHDR+48], 0
    mov qword ptr [r15+F_CMSG], 20      # CMSG_LEN(4)
    mov dword ptr [r15+F_CMSG+8], 1     # SOL_SOCKET
    mov dword ptr [r15+F_CMSG+12], 1    # SCM_RIGHTS
    mov [r15+F_CMSG+16], r14d
    mov rdi, [r15+F_SYNC]
    lea rsi, [r15+F_MSGHDR]
    mov edx, 0x4000                     # MSG_NOSIGNAL
    mov eax, 46
    syscall
    mov esi, 5
    test rax, rax
    js fail
    mov rdi, r14
    mov eax, 3
    syscall
close_bpf:
    mov rdi, [r15+F_BPF]
    mov eax, 3
    syscall
no_seccomp:
    mov rdi, [r15+F_SYNC]
    test rdi, rdi
    js no_sync
    lea rdi, [r15+F_MSG]                # {"type":"ready"}
    lea rsi, [rip+msg_ready]
    call append_str
    call send_msg
    mov rdi, [r15+F_SYNC]
    mov eax, 3
    syscall
no_sync:
    test byte ptr [r15+F_FLAGS], 2      # WAIT for `start`
    jz do_exec
    mov eax, [r15+F_FIFO]
    mov [r15+F_POLL], eax               # pollfd = {fifo, POLLIN}
    mov dword ptr [r15+F_POLL+4], 1
1:  lea rdi, [r15+F_POLL]
    mov esi, 1
    mov edx, -1
    mov eax, 7                          # poll(&pollfd, 1, -1)
    syscall
    cmp rax, 0
    jle 1b                              # -EINTR: poll again
    mov rdi, [r15+F_FIFO]
    lea rsi, [r15+F_BYTE]
    mov edx, 1
    xor eax, eax                        # read(fifo, &byte, 1)
    syscall
    cmp rax, -11                        # -EAGAIN: a writer came, no byte yet
    je 1b
    cmp rax, -4                         # -EINTR
    je 1b
    mov edi, 1
    cmp rax, 1
    jne exit                            # EOF: every writer left without a byte
    mov rdi, [r15+F_STATUS]
    test rdi, rdi
    js 2f
    mov esi, 2                          # fcntl(status, F_SETFD, FD_CLOEXEC)
    mov edx, 1
    mov eax, 72
    syscall
2:  mov rdi, [r15+F_FIFO]
    mov eax, 3
    syscall
do_exec:
    mov rdi, [rbp+24]                   # path = argv[2]
    lea rsi, [rbp+32]                   # argv = &argv[3]
    mov rax, [rbp]                      # argc
    lea rdx, [rbp+rax*8+16]             # envp = &argv[argc+1]
    mov eax, 59                         # execve
    syscall
    mov edi, 127
    cmp rax, -2                         # -ENOENT: 127, anything else: 126
    je exit
refuse:
    mov edi, 126
exit:
    mov eax, 231                        # exit_group
    syscall

fail:                                   # esi = step, rax = -errno: report on sync, exit 1
    neg rax
    mov r12, rax
    mov ebx, esi
    mov rax, [r15+F_SYNC]
    test rax, rax
    js 1f
    lea rdi, [r15+F_MSG]                # {"type":"stub-error","step":S,"errno":E}
    lea rsi, [rip+msg_error]
    call append_str
    mov eax, ebx
    call append_num
    lea rsi, [rip+msg_errno]
    call append_str
    mov rax, r12
    call append_num
    mov byte ptr [rdi], 125             # '}'
    inc rdi
    call send_msg
1:  mov edi, 1
    jmp exit

append_str:                             # copy the NUL-terminated [rsi] to [rdi]; rdi after it
    mov al, [rsi]
    test al, al
    jz 1f
    mov [rdi], al
    inc rdi
    inc rsi
    jmp append_str
1:  ret

append_num:                             # rax in decimal at [rdi]; rdi after it
    lea rcx, [r15+F_DIGITS]
    mov r9, rcx
    mov r10d, 10
1:  xor edx, edx
    div r10
    add dl, 48
    mov [rcx], dl
    dec rcx
    test rax, rax
    jnz 1b
2:  inc rcx
    mov dl, [rcx]
    mov [rdi], dl
    inc rdi
    cmp rcx, r9
    jne 2b
    ret

send_msg:                               # sendto(sync, msg, rdi - msg, MSG_NOSIGNAL, NULL, 0)
    lea rsi, [r15+F_MSG]
    mov rdx, rdi
    sub rdx, rsi
    mov rdi, [r15+F_SYNC]
    test rdi, rdi
    js 1f
    mov r10d, 0x4000
    xor r8d, r8d
    xor r9d, r9d
    mov eax, 44
    syscall
1:  ret

on_signal:                              # handler(signo): exit 128 + signo
    add edi, 128
    mov eax, 231
    syscall

msg_pid:
    .asciz "{\"type\":\"pid\",\"pid\":"
msg_ready:
    .asciz "{\"type\":\"ready\"}"
msg_error:
    .asciz "{\"type\":\"stub-error\",\"step\":"
msg_errno:
    .asciz ",\"errno\":"
msg_listener:
    .ascii "{\"type\":\"seccomp-listener\"}"
msg_listener_end:
signals:                                # the catchable signals whose default is to terminate
    .byte 1,2,3,4,5,6,7,8,10,11,12,13,14,15,16,24,25,26,27,29,30,31,0
