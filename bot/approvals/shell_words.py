"""The words of a shell command, when the shell can only read them literally.

A prefix rule such as ``Bash(npm test *)`` approves commands whose words start
with ``npm test``. That holds only if the shell passes every word to the
program as written: nothing substituted, expanded, redirected, chained or
evaluated. Bash and zsh have too much such syntax to list (``${x@P}`` runs a
string as a prompt, ``$'\\x24(…)'`` spells ``$(`` without writing it,
``a[$(…)]`` runs code inside arithmetic, zsh expands ``=cmd``), so this module
lists what is inert instead and refuses everything else.

A word is one or more of these pieces, joined without blanks:

- unquoted ``A-Za-z0-9`` and ``_ - . , / : = + @ %``; not ``=`` first, as zsh
  expands ``=cmd`` to a path. Left out on purpose: ``~`` (tilde expansion, also
  after ``=``), ``*?[]`` (globs), ``{}`` (brace expansion), ``$``, backtick,
  ``\\``, ``!`` (history), ``#`` (a comment hides the rest), ``^`` (zsh globs),
  quotes, and the operators ``; & | < > ( )``;
- ``'…'``: nothing expands inside single quotes;
- ``"…"`` holding no ``$``, backtick, ``\\`` or ``!``, the only characters
  either shell interprets between double quotes.

Words are separated by spaces and tabs, the shell's blanks. Every other
character must be printable ASCII: a newline or CR ends a command, a NUL
silently cuts it, and other bytes depend on the shell's locale.
"""

from __future__ import annotations

import re

_UNQUOTED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.,/:=+@%")
_PRINTABLE = frozenset(chr(c) for c in range(0x20, 0x7F))
_SINGLE_QUOTED = _PRINTABLE - {"'"}
_DOUBLE_QUOTED = _PRINTABLE - set('"$`\\!')
_BLANKS = " \t"
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")

# The shell runs its builtins itself, and several evaluate an argument as a
# variable name or as arithmetic, which expands "$(…)" in an array subscript
# again: bash runs `touch p` for  printf -v 'a[$(touch p)]' x,
# test -v 'a[$(touch p)]'  and  declare / typeset / let 'a[$(touch p)]=1'.
# So when the command is a builtin (bash's `compgen -b -k`, plus zsh's own),
# a quoted literal may not hold "$" or a backtick either.
SHELL_BUILTINS = frozenset(
    # bash 5.2 builtins and reserved words
    ". : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare"
    " dirs disown echo enable eval exec exit export false fc fg getopts hash help history jobs kill"
    " let local logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt"
    " source suspend test times trap true type typeset ulimit umask unalias unset wait"
    " if then else elif fi case esac for select while until do done in function time { } ! [[ ]] coproc"
    # zsh builtins and precommand modifiers that bash lacks
    " - autoload bindkey bye chdir emulate float functions getln integer limit log noglob nocorrect"
    " print private pushln r rehash sched setopt unfunction unhash unlimit unsetopt vared whence"
    " where which zcompile zformat zle zmodload zparseopts zregexparse zstyle".split()
)


def literal_words(command: str) -> list[str] | None:
    """The words the shell would pass for ``command``, or ``None`` if any is not a plain literal.

    ``None`` means the shell might expand, substitute, redirect, chain or
    evaluate something: a rule must not vouch for such a command.
    ``git 'status'`` gives ``["git", "status"]``, as bash would.
    """
    words: list[str] = []
    raw: list[str] = []
    i, end = 0, len(command)
    while i < end:
        if command[i] in _BLANKS:
            i += 1
            continue
        start, value = i, []
        while i < end and command[i] not in _BLANKS:
            char = command[i]
            if char in "'\"":
                close = command.find(char, i + 1)
                allowed = _SINGLE_QUOTED if char == "'" else _DOUBLE_QUOTED
                if close < 0 or not allowed.issuperset(command[i + 1 : close]):
                    return None
                value.append(command[i + 1 : close])
                i = close + 1
            elif char in _UNQUOTED and not (char == "=" and i == start):
                value.append(char)
                i += 1
            else:
                return None
        words.append("".join(value))
        raw.append(command[start:i])
    if _runs_a_builtin(words, raw) and any("$" in w or "`" in w for w in words):
        return None
    return words


def _runs_a_builtin(words: list[str], raw: list[str]) -> bool:
    """Whether the command name (the first word after ``NAME=value`` assignments) is a builtin."""
    for word, text in zip(words, raw):
        if not _ASSIGNMENT.match(text):
            return word in SHELL_BUILTINS
    return False
