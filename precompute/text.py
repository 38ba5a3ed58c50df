"""What the command line prints: each line one line, whatever the names in it hold."""

from __future__ import annotations

import sys
from typing import TextIO


def printable(line: str) -> str:
    """``line`` with every character a terminal does not show as itself escaped as Python writes
    it (``\\n``, ``\\x1b``, ``\\u202e``, a lone surrogate): an image name from an annotation file
    cannot break a table, forge a line of a report or move the cursor."""
    if line.isprintable():
        return line
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in line)


def say(lines: str | list[str], file: TextIO | None = None) -> None:
    """Print ``lines`` (one, or a list), each escaped (:func:`printable`)."""
    lines = [lines] if isinstance(lines, str) else lines
    print("\n".join(map(printable, lines)), file=file or sys.stdout)
