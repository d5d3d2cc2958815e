# The exec stub (x86_64): execve(argv[1], &argv[2], envp).
# Run by pyrunc as argv = ["pyrunc-exec", path, arg0, arg1, ...]. Any other
# argv[0] (a container exec'ing /proc/self/exe, or a "#!/proc/self/exe"
# script) makes it exit 126 at once instead of looping on itself. If execve
# fails it exits 127 (ENOENT) or 126. See pyrunc/linux/trampoline.py, which
# holds the assembled bytes; tests/unit/test_trampoline.py re-assembles this
# file with GNU as (when installed) and compares.
.intel_syntax noprefix
.globl _start
_start:
    mov rsi, [rsp+8]                    # argv[0]
    test rsi, rsi
    jz fail
    movabs rax, 0x652d636e75727970      # "pyrunc-e"
    cmp [rsi], rax
    jne fail
    cmp dword ptr [rsi+8], 0x00636578   # "xec\0"
    jne fail
    mov rdi, [rsp+16]                   # path = argv[1]
    lea rsi, [rsp+24]                   # argv = &argv[2]
    mov rax, [rsp]                      # argc
    lea rdx, [rsp+rax*8+16]             # envp = &argv[argc+1]
    mov eax, 59                         # execve
    syscall
    mov edi, 127
    cmp rax, -2                         # -ENOENT: 127, anything else: 126
    je exit
fail:
    mov edi, 126
exit:
    mov eax, 231                        # exit_group
    syscall
