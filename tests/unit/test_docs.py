"""The man pages and shell completions are generated from the CLI table
(tools/gen-docs): the committed files must be what it makes now, and the
completions must complete what the table says."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from pyrunc.cli import COMMANDS, GLOBAL_OPTIONS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GENERATOR = os.path.join(REPO, "tools", "gen-docs")
MAN_DIR = os.path.join(REPO, "share", "man", "man8")
BASH = os.path.join(REPO, "share", "bash-completion", "completions", "pyrunc")
ZSH = os.path.join(REPO, "share", "zsh", "site-functions", "_pyrunc")


def test_generated_docs_are_up_to_date():
    result = subprocess.run([sys.executable, GENERATOR, "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_there_is_a_man_page_for_pyrunc_and_each_verb():
    assert sorted(os.listdir(MAN_DIR)) == sorted(["pyrunc.8"] + [f"pyrunc-{v}.8" for v in COMMANDS])


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_man_page_of_each_verb_has_every_visible_flag(verb):
    with open(os.path.join(MAN_DIR, f"pyrunc-{verb}.8")) as f:
        page = f.read()
    for option in COMMANDS[verb].options:
        for name in option.names:
            assert (name.replace("-", "\\-") in page) != option.hidden, name


@pytest.mark.skipif(not shutil.which("man"), reason="needs man (man-db)")
def test_man_renders_the_pages_without_warnings():
    for name in os.listdir(MAN_DIR):
        result = subprocess.run(["man", "--warnings", "-l", os.path.join(MAN_DIR, name)], capture_output=True,
                                text=True, env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "80"})
        assert result.returncode == 0 and result.stderr == "", (name, result.stderr)
        assert name[:-2].upper() in result.stdout


def _complete(words: list[str], ids: str = "") -> list[str]:
    """Run the bash completion function on `words` (the last one is being typed),
    with a `pyrunc` on PATH whose `list -q` prints `ids` and records its args."""
    script = f"""
pyrunc() {{ [ "$*" = "${{1:+$1 $2 }}list -q" ] || [ "$*" = "list -q" ] || return 1; printf '%s\\n' {ids}; }}
source {BASH}
COMP_WORDS=({" ".join(repr(w) for w in words)})
COMP_CWORD={len(words) - 1}
_pyrunc
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.split("\n") if line]


def test_bash_completes_verbs():
    assert _complete(["pyrunc", "st"]) == ["start", "state"]
    assert sorted(_complete(["pyrunc", ""])) == sorted([*COMMANDS, "help"])


def test_bash_completes_global_flags_before_the_verb_and_verb_flags_after():
    assert _complete(["pyrunc", "--ro"]) == ["--root"]
    assert "--force" in _complete(["pyrunc", "delete", "--f"])
    assert "--root" not in _complete(["pyrunc", "delete", "--"])
    exec_flags = _complete(["pyrunc", "exec", "--"])
    assert {n for o in COMMANDS["exec"].options if not o.hidden for n in o.names if n.startswith("--")} <= set(exec_flags)


def test_bash_completes_container_ids_from_list():
    assert _complete(["pyrunc", "kill", ""], ids="web db") == ["web", "db"]
    assert _complete(["pyrunc", "--root", "/x", "state", "w"], ids="web db") == ["web"]
    assert _complete(["pyrunc", "kill", "web", ""], ids="web db") == []  # the signal, not an id
    assert _complete(["pyrunc", "spec", ""], ids="web") == []


def test_bash_completes_directories_for_bundle(tmp_path):
    (tmp_path / "bundle").mkdir()
    (tmp_path / "file").write_text("")
    assert _complete(["pyrunc", "create", "--bundle", f"{tmp_path}/"]) == [f"{tmp_path}/bundle"]


def test_zsh_completion_is_valid_zsh_naming_every_verb():
    with open(ZSH) as f:
        text = f.read()
    assert text.startswith("#compdef pyrunc\n")
    for verb in COMMANDS:
        assert f"'{verb}:" in text and f"({verb})" in text
    for option in GLOBAL_OPTIONS:
        assert option.names[0] in text or option.hidden
    if not shutil.which("zsh"):
        pytest.skip("needs zsh for the syntax check")
    result = subprocess.run(["zsh", "-n", ZSH], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


ZPTY_DRIVER = r"""
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "unsetopt zle_bracketed_paste 2>/dev/null; PS1='PROMPT> '; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D; pyrunc() { [[ \$* == *'list -q'* ]] && print -l web db; }; zstyle ':completion:*' menu no"
sleep 0.5
zpty -w -n z "$2"$'\t'
sleep 1.5
zpty -w -n z $'\C-a\C-k'
zpty -w z "echo END"
sleep 0.5
local all="" chunk
while zpty -r -t z chunk; do all+=$chunk; done
print -r -- "$all"
zpty -d z
"""


def _zsh_complete(tmp_path, words: str) -> str:
    """What an interactive zsh shows after `words` and a TAB, with the
    completion function on fpath and a `pyrunc` whose `list -q` prints web, db."""
    import re

    driver = tmp_path / "driver.zsh"
    driver.write_text(ZPTY_DRIVER)
    result = subprocess.run(["zsh", "-f", str(driver), os.path.dirname(ZSH), words], capture_output=True,
                            text=True, timeout=60)
    # Escape sequences and the line editor's backspaces (it echoes a
    # character, backs over it, and writes the line again) out.
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]|[\r\b\a]", "", result.stdout)


@pytest.mark.skipif(not shutil.which("zsh"), reason="needs zsh")
def test_zsh_completes_verbs_flags_and_container_ids(tmp_path):
    assert "pyrunc delete --force" in _zsh_complete(tmp_path, "pyrunc delete --fo")
    shown = _zsh_complete(tmp_path, "pyrunc kill ")
    assert "db" in shown and "web" in shown
