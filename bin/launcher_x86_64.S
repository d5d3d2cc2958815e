# The pyrunc command (x86_64): a static launcher that starts the venv's
# Python in isolated mode before the interpreter reads anything.
#
# pip rewrites a "#!python -I -S" script to "#!/venv/bin/python", dropping the
# flags, and site.py (which imports sitecustomize and runs .pth lines from
# PYTHONPATH and the user site) runs before any line of a script, so a script
# cannot protect itself. This program does what the flags would: it finds
# the directory it really lives in (readlink of /proc/self/exe, which the
# kernel resolves through symlinks such as /usr/local/bin/pyrunc or pipx's),
# and execs
#     DIR/python -I -S DIR/../share/pyrunc/main.py ARG...
# with the caller's arguments and environment. -I ignores every PYTHON*
# variable and the user site, and leaves the script's directory off
# sys.path; -S skips site.py (main.py adds the venv's site-packages itself).
# If the exec fails it writes one line to stderr and exits 127 (no python
# beside it: not a venv) or 126, like a shell.
# tools/gen-launcher turns this file into bin/pyrunc; tests/unit/test_launcher.py
# re-assembles it and compares.
.intel_syntax noprefix
.globl _start
_start:
    mov r12, rsp                        # r12: argc, argv[], NULL, envp[] as the kernel laid them out
    sub rsp, 8192
    mov r13, rsp                        # r13: "DIR/python"; r13+4096: "DIR/../share/pyrunc/main.py"
    lea rdi, [rip + self_exe]
    mov rsi, r13
    mov edx, 4000
    mov eax, 89                         # readlink("/proc/self/exe", r13, 4000)
    syscall
    test rax, rax
    jle fail
    cmp rax, 4000
    jae fail
    mov rcx, rax                        # rcx = length of DIR/ (up to the last '/')
1:  dec rcx
    js fail
    cmp byte ptr [r13+rcx], '/'
    jne 1b
    inc rcx
    mov r14, rcx
    lea rdi, [r13+4096]                 # script = DIR/ + main_py
    mov rsi, r13
    rep movsb
    lea rsi, [rip + main_py]
2:  lodsb
    stosb
    test al, al
    jnz 2b
    lea rdi, [r13+r14]                  # python = DIR/ + "python"
    lea rsi, [rip + python]
3:  lodsb
    stosb
    test al, al
    jnz 3b
    mov rbx, [r12]                      # rbx = argc
    lea r15, [r12+rbx*8+16]             # r15 = envp
    lea rax, [rbx*8+48]                 # new argv: 4 + (argc - 1) + NULL pointers, 16-aligned
    sub rsp, rax
    and rsp, -16
    mov [rsp], r13                      # argv[0] = DIR/python: Python finds the venv from it
    lea rax, [rip + opt_isolated]
    mov [rsp+8], rax
    lea rax, [rip + opt_no_site]
    mov [rsp+16], rax
    lea rax, [r13+4096]
    mov [rsp+24], rax
    lea rdi, [rsp+32]
    lea rsi, [r12+16]                   # the caller's argv[1..]
    mov rcx, rbx
    dec rcx
    jle 4f                              # argc 0 or 1: no arguments to copy
    rep movsq
4:  mov qword ptr [rdi], 0
    mov rdi, r13
    mov rsi, rsp
    mov rdx, r15
    mov eax, 59                         # execve(python, argv, envp)
    syscall
    mov ebx, 127                        # -ENOENT: 127, anything else: 126
    cmp rax, -2
    je 5f
fail:
    mov ebx, 126
5:  mov edi, 2
    lea rsi, [rip + message]
    mov edx, message_end - message
    mov eax, 1                          # write(2, message)
    syscall
    mov edi, ebx
    mov eax, 231                        # exit_group
    syscall
self_exe:
    .asciz "/proc/self/exe"
python:
    .asciz "python"
main_py:
    .asciz "../share/pyrunc/main.py"
opt_isolated:
    .asciz "-I"
opt_no_site:
    .asciz "-S"
message:
    .ascii "pyrunc: cannot run the python beside this launcher: pyrunc must be installed in a venv (pip install in a venv, or pipx install)\n"
message_end:
