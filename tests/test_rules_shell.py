"""Prefix rules ("Always allow") approve only commands whose every word is a plain literal.

Each hostile command below starts with the prefix its rule names, and the
test first proves, with a real ``bash -c`` in a temp dir, that it runs code
(it creates the file ``p``). Harmless commands must still match, and bash
must split them into exactly the words the matcher compared.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from bot.approvals.allowlist import TeamAllowList
from bot.approvals.rules import Rule
from bot.approvals.shell_words import literal_words
from bot.demo.scripted_model import text, tool_use
from tests.conftest import posted
from tests.fakes.agent_env import clean_agent_env
from tests.test_agent_e2e import run_agent

BASH = shutil.which("bash") or "/bin/bash"
MARKER = "p"


def bash(command: str, cwd: Path, *, path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` as ``bash -c`` does, with a clean environment, in ``cwd``."""
    env = {"PATH": path, "HOME": str(cwd), "LC_ALL": "C"}
    return subprocess.run(
        [BASH, "-c", command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=10,
        check=False,
    )


def marker_appears(directory: Path, within: float = 5.0) -> bool:
    """Whether ``p`` exists, or appears soon (process substitutions run in the background)."""
    deadline = time.monotonic() + within
    while not (directory / MARKER).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def matches(rule: str, command: str) -> bool:
    return Rule.parse(rule).matches("Bash", {"command": command})


# (rule, command): every command starts with the rule's prefix and runs `touch p` under bash.
HOSTILE = [
    # The example: ${x@P} expands x as a prompt, which runs $(touch p).
    ("Bash(echo:*)", r"echo ${x=\$\(touch p\)} ${x@P}"),
    ("Bash(echo:*)", r"echo ok ${x=\$\(touch p\)}${x@P}"),
    # ANSI-C quoting spells "$(" or a backtick without writing it.
    ("Bash(echo:*)", r"echo ${x=$'\x24(touch p)'} ${x@P}"),
    ("Bash(echo:*)", r"echo ${x=$'\140touch p\140'} ${x@P}"),
    ("Bash(echo:*)", r"echo ${x=$'\u0024(touch p)'} ${x@P}"),
    # Arithmetic evaluates a variable's value, and an array subscript in it runs code.
    ("Bash(echo:*)", r"echo ${x=a[\$\(touch p\)]} $((x))"),
    ("Bash(echo:*)", r"echo ${x=a[\$\(touch p\)]} $[x]"),
    ("Bash(echo:*)", r"echo ${x=a[\$\(touch p\)]} ${a[x]}"),
    ("Bash(echo:*)", r"echo $(( a[$(touch p)] ))"),
    ("Bash(echo:*)", r"echo $((a[`touch p`]))"),
    ("Bash(echo:*)", r"echo ${a[$(touch p)]}"),
    # Command substitution, plain, quoted, spaced, inside other expansions.
    ("Bash(echo:*)", r"echo $(touch p)"),
    ("Bash(echo:*)", r"echo $( touch p )"),
    ("Bash(echo:*)", r"echo `touch p`"),
    ("Bash(echo:*)", r'echo "$(touch p)"'),
    ("Bash(echo:*)", r'echo "`touch p`"'),
    ("Bash(echo:*)", r"echo 'a'$(touch p)'b'"),
    ("Bash(echo:*)", r"echo --opt=`touch p`"),
    ("Bash(echo:*)", r"echo x=$(touch p)"),
    ("Bash(echo:*)", r"echo ${x:-$(touch p)}"),
    ("Bash(echo:*)", r"echo ${x:=`touch p`}"),
    ("Bash(echo:*)", r"echo ${x@Q}$(touch p)"),
    ("Bash(echo:*)", r"echo $\"x\" $(touch p)"),
    ("Bash(echo:*)", r"echo $[ $(touch p) ]"),
    ("Bash(echo:*)", r"echo ${IFS}$(touch${IFS}p)"),
    # Brace, tilde, glob and history characters around a substitution.
    ("Bash(echo:*)", r"echo {a,b}$(touch p)"),
    ("Bash(echo:*)", r"echo {$(touch p),b}"),
    ("Bash(echo:*)", r"echo ~+/$(touch p)"),
    ("Bash(echo:*)", r"echo * `touch p`"),
    ("Bash(echo:*)", r"echo [$(touch p)]"),
    ("Bash(echo:*)", r"echo ?$(touch p)"),
    ("Bash(echo:*)", r"echo !$(touch p)"),
    ("Bash(echo:*)", r"echo =$(touch p)"),
    # Process substitution and redirections that write the file.
    ("Bash(cat:*)", r"cat <(touch p)"),
    ("Bash(echo:*)", r"echo >(touch p)"),
    ("Bash(echo:*)", r"echo x >p"),
    ("Bash(echo:*)", r"echo x>>p"),
    ("Bash(echo:*)", r"echo x &>p"),
    ("Bash(echo:*)", r"echo x >|p"),
    ("Bash(cat:*)", r"cat <<<x >p"),
    # Chaining, pipes, background, newlines, line continuation.
    ("Bash(echo:*)", r"echo ok; touch p"),
    ("Bash(echo:*)", r"echo ok;touch p"),
    ("Bash(echo:*)", "echo\tok;touch\tp"),
    ("Bash(echo:*)", r"echo ok && touch p"),
    ("Bash(echo:*)", r"echo ok${IFS}&&${IFS}touch${IFS}p"),
    ("Bash(false:*)", r"false || touch p"),
    ("Bash(echo:*)", r"echo ok | touch p"),
    ("Bash(echo:*)", r"echo a |& touch p"),
    ("Bash(echo:*)", r"echo ok & touch p"),
    ("Bash(echo:*)", "echo ok\ntouch p"),
    ("Bash(echo:*)", "echo ok \\\n; touch p"),
    ("Bash(echo:*)", r"echo '' ; touch p"),
    ("Bash(echo:*)", r"echo \`touch p\` | sh"),
    ("Bash(ls:*)", r"ls -la; touch p"),
    ("Bash(ls:*)", r"ls $(touch p)"),
    ("Bash(git status:*)", r"git status; touch p"),
    ("Bash(npm test:*)", r"npm test; touch p"),
    ("Bash(npm test *)", r"npm test -- --watch=false ${x=\$\(touch p\)} ${x@P}"),
    # Builtins that evaluate a *quoted* argument as a variable name or arithmetic.
    ("Bash(printf:*)", r"printf -v 'a[$(touch p)]' %s x"),
    ("Bash(printf:*)", r"printf -v 'a[`touch p`]' %s x"),
    ("Bash(test:*)", r"test -v 'a[$(touch p)]'"),
    ("Bash(declare:*)", r"declare 'a[$(touch p)]=1'"),
    ("Bash(typeset:*)", r"typeset 'a[$(touch p)]=1'"),
    ("Bash(let:*)", r"let 'a[$(touch p)]=1'"),
    ("Bash(command:*)", r"command printf -v 'a[$(touch p)]' %s x"),
    ("Bash(time:*)", r"time printf -v 'a[$(touch p)]' %s x"),
    ("Bash(LC_ALL=C printf:*)", r"LC_ALL=C printf -v 'a[$(touch p)]' %s x"),
]


def _prefix_of(rule: str) -> str:
    return Rule.parse(rule).content.removesuffix(":*").removesuffix(" *")


@pytest.mark.parametrize(("rule", "command"), HOSTILE)
def test_a_command_that_runs_code_is_not_matched_by_its_prefix_rule(tmp_path, rule, command):
    result = bash(command, tmp_path)
    assert marker_appears(tmp_path), f"not an attack under bash: {command!r} ({result.stderr!r})"
    assert command.startswith(_prefix_of(rule))
    assert matches(rule, _prefix_of(rule)), "the rule must match its own prefix, or this test proves nothing"
    assert not matches(rule, command)


def test_a_command_name_with_an_invisible_character_is_another_program(tmp_path):
    # bash's blanks are space and tab only: "\vnpm" is a program of that name,
    # which PATH may find (here PATH holds "."). Python's strip() would drop the "\v".
    script = tmp_path / "\vnpm"
    script.write_text("#!/bin/sh\ntouch p\n")
    script.chmod(0o755)
    bash("\vnpm test", tmp_path, path=".:/usr/bin:/bin")
    assert marker_appears(tmp_path)
    assert matches("Bash(npm test:*)", "npm test")
    for command in ("\vnpm test", "\fnpm test", "\x1cnpm test", "\xa0npm test", "npm test\r", "npm test\v"):
        assert not matches("Bash(npm test:*)", command), repr(command)


# (rule, command) that expand, or could, yet run nothing: still asked.
NOT_PLAIN = [
    ("Bash(echo:*)", "echo ~"),
    ("Bash(echo:*)", "echo ~/x"),
    ("Bash(echo:*)", "echo ~+"),
    ("Bash(echo:*)", "echo a=~/x"),
    ("Bash(echo:*)", "echo --dir=~root"),
    ("Bash(echo:*)", "echo *"),
    ("Bash(echo:*)", "echo ?"),
    ("Bash(echo:*)", "echo [ab]"),
    ("Bash(echo:*)", "echo {a,b}"),
    ("Bash(echo:*)", "echo $HOME"),
    ("Bash(echo:*)", "echo ${HOME}"),
    ("Bash(echo:*)", 'echo "$HOME"'),
    ("Bash(echo:*)", r"echo \$HOME"),
    ("Bash(echo:*)", r'echo "a\b"'),
    ("Bash(echo:*)", "echo $'\\x41'"),
    ("Bash(echo:*)", 'echo $"x"'),
    ("Bash(echo:*)", "echo !!"),
    ("Bash(echo:*)", 'echo "!!"'),
    ("Bash(echo:*)", "echo ok #; rm -rf /"),
    ("Bash(echo:*)", "echo =ls"),  # zsh expands =ls to /bin/ls
    ("Bash(echo:*)", "echo a^b"),  # a zsh glob operator
    ("Bash(echo:*)", "echo ok\\"),
    ("Bash(echo:*)", "echo 'unterminated"),
    ("Bash(echo:*)", 'echo "unterminated'),
    ("Bash(echo:*)", "echo 'a\nb'"),
    ("Bash(echo:*)", "echo 'a\rb'"),
    ("Bash(echo:*)", "echo ok\x00; rm -rf /"),  # bash -c stops reading at a NUL
    ("Bash(echo:*)", "echo café"),
    ("Bash(echo:*)", "echo 'café'"),
    ("Bash(echo:*)", "echo ok\u2028rm"),
    ("Bash(echo:*)", "echo '$HOME'"),  # echo is a builtin: no "$" even quoted
    ("Bash(echo:*)", "echo (x)"),
    ("Bash(git:*)", "gitx status"),
    ("Bash(npm test:*)", "npm tests"),
    ("Bash(npm test:*)", "'npm test'"),
    ("Bash(npm test:*)", "npm"),
    # Rules that name no plain prefix match nothing.
    ("Bash(:*)", "echo ok"),
    ("Bash( *)", "echo ok"),
    ("Bash(echo $HOME:*)", "echo $HOME x"),
    ("Bash(npm test && rm:*)", "npm test && rm -rf /"),
    ("Bash(echo *:*)", "echo * x"),
]


@pytest.mark.parametrize(("rule", "command"), NOT_PLAIN)
def test_a_command_the_shell_would_expand_is_asked(rule, command):
    assert not matches(rule, command)


# (rule, command) that must keep matching.
HARMLESS = [
    ("Bash(npm test:*)", "npm test"),
    ("Bash(npm test *)", "npm test -- --watch=false"),
    ("Bash(npm test *)", "npm  test  --ci"),
    ("Bash(npm test *)", "npm\ttest"),
    ("Bash(npm test *)", "npm 'test' --ci"),
    ("Bash(npm test *)", "  npm test  \n"),
    ("Bash(npm run:*)", "npm run build --workspace=@scope/pkg"),
    ("Bash(git status:*)", "git status"),
    ("Bash(git status:*)", "git status --short"),
    ("Bash(git commit:*)", 'git commit -m "fix: thing"'),
    ("Bash(git commit:*)", "git commit -m 'costs $5, see `make`'"),
    ("Bash(git log:*)", "git log --format=%H%n%s -n 5 origin/main..HEAD"),
    ("Bash(echo:*)", "echo 'hello world'"),
    ("Bash(echo:*)", 'echo "hello world"'),
    ("Bash(echo:*)", "echo --msg='hi there'"),
    ("Bash(echo:*)", "echo 'it'\"'\"'s'"),
    ("Bash(echo:*)", "echo '' \"\""),
    ("Bash(echo:*)", "echo a=b c,d 100% user@host x+y 1:2"),
    ("Bash(ls:*)", "ls -la ./src"),
    ("Bash(pytest:*)", "pytest tests/test_x.py::test_y -k 'a and b'"),
    ("Bash(python -m pytest:*)", "python -m pytest -q -p no:cacheprovider tests/test_x.py"),
    ("Bash(grep:*)", "grep -rn 'foo$' src/app.py"),
    ("Bash(curl:*)", "curl -sS 'https://example.com/a?b=c&d=e'"),
    ("Bash(make:*)", "make -j4 CFLAGS=-O2"),
    ("Bash(printf:*)", "printf '%s\\n' 'hello world'"),
    ("Bash(NODE_ENV=test npm test:*)", "NODE_ENV=test npm test --ci"),
]


@pytest.mark.parametrize(("rule", "command"), HARMLESS)
def test_a_plain_command_still_matches(tmp_path, rule, command):
    assert matches(rule, command)
    # And bash passes exactly the words that were compared.
    assert bash_words(command, tmp_path) == literal_words(command.strip())


def bash_words(command: str, cwd: Path) -> list[str]:
    """The words bash passes for ``command``, through a function that prints them."""
    result = bash("w() { for word; do printf '%s\\0' \"$word\"; done; }; w " + command, cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().split("\0")[:-1]


FUZZ_PIECES = [
    "a",
    "touch",
    " ",
    " ",
    "\t",
    "p",
    "-x",
    "=",
    "x=",
    "'",
    "'",
    '"',
    '"',
    "$",
    "$(",
    ")",
    "(",
    "`",
    "\\",
    ";",
    "&",
    "|",
    "<",
    ">",
    "{",
    ",",
    "}",
    "~",
    "*",
    "?",
    "[",
    "]",
    "#",
    "!",
    "%",
    "@",
    "+",
    ":",
    ".",
    "/",
    "^",
    "\n",
    "${x@P}",
    "$'\\x24'",
    "'$(touch p)'",
    '"ok"',
    "é",
]


def test_whatever_the_matcher_accepts_bash_reads_as_the_same_literal_words(tmp_path):
    """Random commands from hostile pieces: any the matcher accepts is inert under bash."""
    rng = random.Random(20250101)
    accepted: list[str] = []
    for _ in range(30000):
        command = "".join(rng.choice(FUZZ_PIECES) for _ in range(rng.randint(1, 8)))
        if literal_words(command) is not None and command not in accepted:
            accepted.append(command)
        if len(accepted) == 300:
            break
    assert len(accepted) == 300
    # One bash run: each accepted command is one line, its words ended by NUL, the line by \x01.
    script = "w() { for word; do printf '%s\\0' \"$word\"; done; printf '\\1'; }\n" + "".join(
        f"w {c}\n" for c in accepted
    )
    result = bash(script, tmp_path)
    assert result.returncode == 0, result.stderr
    seen = [line.split("\0")[:-1] for line in result.stdout.decode().split("\1")[:-1]]
    assert seen == [literal_words(c) for c in accepted]
    assert not (tmp_path / MARKER).exists()
    for command in accepted:
        assert matches("Bash(w:*)", "w " + command)


# -- through the real agent: the team allow-list does not vouch for a hostile command ------------


@pytest.fixture
def _agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_agent_env(monkeypatch)


@pytest.mark.slow
async def test_the_team_allow_list_runs_plain_commands_and_asks_for_the_rest(
    _agent_env, tmp_path, start_worker, make_approver, slack, redis
):
    worker = await start_worker()
    approver = await make_approver()
    await TeamAllowList(redis).add([Rule.parse("Bash(touch *)")], added_by="U_ALICE")
    hostile = r"touch ok.txt ${x=\$\(touch p\)} ${x@P}"

    async def deny_when_posted() -> None:
        message = await posted(slack)
        await worker.deny("U_BOB", message, "not that one", name="bob")

    clicker = asyncio.create_task(deny_when_posted())
    script = [
        tool_use("Bash", {"command": "touch made.txt", "description": "Make a file"}),
        tool_use("Bash", {"command": hostile, "description": "Make another file"}),
        text("done"),
    ]
    try:
        model = await run_agent(tmp_path, approver, script)
        work = tmp_path / "work"
        assert (work / "made.txt").exists()  # the rule covered it: no one was asked
        assert not (work / "ok.txt").exists() and not (work / MARKER).exists(), "the hostile command ran"
        await asyncio.wait_for(clicker, 5)
    finally:
        clicker.cancel()
    allowed, denied = model.tool_results()
    assert not allowed.is_error
    assert denied.is_error and "Denied in Slack by @bob (U_BOB)" in denied.content
    [message] = slack.roots()
    assert "touch ok.txt" in message.text
