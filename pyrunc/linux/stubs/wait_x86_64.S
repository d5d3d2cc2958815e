# The wait stub (x86_64): the container init while it waits for `start`.
# Run as argv = ["pyrunc-wait", FD, path, arg0, arg1, ...] where FD (decimal)
# is the exec fifo's read end. It makes itself non-dumpable (so no other
# process can open its /proc entries, fd FD among them), catches the signals
# whose default action ends a process (pid 1 of a namespace gets no default
# action, so without handlers `kill` of a created container could only be
# SIGKILL) and exits 128+signal on them, polls the fifo until `pyrunc start`
# writes its byte, then execs the program like the exec stub (127/126 when
# that fails, 1 when start gave up without a byte). Any other argv[0] (a
# container exec'ing /proc/self/exe) exits 126 at once. A few kilobytes
# instead of a Python process.
.intel_syntax noprefix
.globl _start
_start:
    mov rsi, [rsp+8]                    # argv[0] must be "pyrunc-wait"
    test rsi, rsi
    jz refuse
    movabs rax, 0x772d636e75727970      # "pyrunc-w"
    cmp [rsi], rax
    jne refuse
    cmp dword ptr [rsi+8], 0x00746961   # "ait\0"
    jne refuse
    mov edi, 4                          # prctl(PR_SET_DUMPABLE, 0)
    xor esi, esi
    mov eax, 157
    syscall
    mov rsi, [rsp+16]                   # r12 = the fifo fd, parsed from argv[1]
    xor r12d, r12d
4:  movzx eax, byte ptr [rsi]
    test eax, eax
    jz 5f
    sub eax, 48                         # '0'
    imul r12d, r12d, 10
    add r12d, eax
    inc rsi
    jmp 4b
5:  sub rsp, 64                         # [rsp]: struct k_sigaction, [rsp+32]: pollfd, [rsp+40]: 1 byte
    lea rax, [rip + on_signal]
    mov [rsp], rax                      # sa_handler
    mov qword ptr [rsp+8], 0x04000000   # sa_flags = SA_RESTORER
    mov [rsp+16], rax                   # sa_restorer (never returned to: the handler exits)
    mov qword ptr [rsp+24], 0           # sa_mask
    lea rbx, [rip + signals]
1:  movzx edi, byte ptr [rbx]           # for each signal in the list:
    test edi, edi
    jz 2f
    mov rsi, rsp
    xor edx, edx
    mov r10d, 8
    mov eax, 13                         #   rt_sigaction(sig, &act, NULL, 8)
    syscall
    inc rbx
    jmp 1b
2:  mov [rsp+32], r12d                  # pollfd = {fifo fd, POLLIN}
    mov dword ptr [rsp+36], 1
3:  lea rdi, [rsp+32]
    mov esi, 1
    mov edx, -1
    mov eax, 7                          # poll(&pollfd, 1, -1): sleep until start opens the fifo
    syscall
    cmp rax, 0
    jle 3b                              # -EINTR: poll again
    mov edi, r12d
    lea rsi, [rsp+40]
    mov edx, 1
    xor eax, eax                        # read(fd, &byte, 1)
    syscall
    cmp rax, -11                        # -EAGAIN: a writer came but wrote nothing yet
    je 3b
    cmp rax, -4                         # -EINTR
    je 3b
    cmp rax, 1
    jne gave_up                         # EOF: the writer left without a byte
    mov edi, r12d
    mov eax, 3                          # close(fd): not for the program
    syscall
    add rsp, 64
    mov rdi, [rsp+24]                   # path = argv[2]
    lea rsi, [rsp+32]                   # argv = &argv[3]
    mov rax, [rsp]                      # argc
    lea rdx, [rsp+rax*8+16]             # envp = &argv[argc+1]
    mov eax, 59                         # execve
    syscall
    mov edi, 127
    cmp rax, -2                         # -ENOENT: 127, anything else: 126
    je exit
refuse:
    mov edi, 126
    jmp exit
gave_up:
    mov edi, 1
exit:
    mov eax, 231                        # exit_group
    syscall
on_signal:                              # handler(signo): exit 128 + signo
    add edi, 128
    mov eax, 231
    syscall
signals:                                # the catchable signals whose default is to terminate
    .byte 1,2,3,4,5,6,7,8,10,11,12,13,14,15,16,24,25,26,27,29,30,31,0
