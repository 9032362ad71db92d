"""How text from outside (a file's name, an error about it) is printed: on one line, with nothing a terminal obeys."""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with every character that is not printable (newline, carriage return, tab, escape, line separator...)
    written as its Python escape (`\\n`, `\\x1b`, `\\u2028`), so a file named with a newline cannot forge a log line.

    Printable characters, accented letters included, stay as they are; a backslash too, so escaping twice changes
    nothing and a message that already holds a printed name can be printed again.
    """
    if text.isprintable():
        return text
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)
