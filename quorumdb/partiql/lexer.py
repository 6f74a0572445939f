"""Tokens of DynamoDB's PartiQL subset, each with its position (line and column, from 1).

Words are identifiers or keywords (the parser decides, case-insensitively); ``"quoted"`` text
is always an identifier and ``'quoted'`` text always a string, both with the quote doubled to
escape it. ``--`` starts a comment to the end of the line. A character the language does not
use is a lexing error with its position, raised as ``PartiQLSyntaxError``; nothing here knows
the grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

__all__ = ["Kind", "Token", "Pos", "PartiQLSyntaxError", "tokenize"]


class Kind(Enum):
    WORD = "word"  # identifier or keyword
    QUOTED = "quoted identifier"  # "name"
    STRING = "string"  # 'text'
    NUMBER = "number"
    PARAM = "?"
    PUNCT = "punctuation"
    EOF = "end of statement"


@dataclass(frozen=True, slots=True)
class Pos:
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # the value: identifier / string contents unquoted, punctuation as written
    pos: Pos

    def describe(self) -> str:
        if self.kind is Kind.EOF:
            return "end of statement"
        if self.kind is Kind.STRING:
            return f"'{self.text}'"
        if self.kind is Kind.QUOTED:
            return f'"{self.text}"'
        return f"'{self.text}'"


class PartiQLSyntaxError(Exception):
    """A statement that does not lex or parse; ``pos`` is where the problem was found."""

    def __init__(self, detail: str, pos: Pos) -> None:
        super().__init__(f"{detail} at line {pos.line}, column {pos.column}")
        self.detail = detail
        self.pos = pos


_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_PUNCT = ("<<", ">>", "<=", ">=", "<>", "!=", "=", "<", ">", "(", ")", "[", "]", "{", "}",
          ",", ".", ":", "*", "+", "-", ";")
_WS = frozenset(" \t\r\n\f")


def _quoted(text: str, start: int, quote: str, pos: Pos) -> tuple[str, int]:
    """The contents of the quoted text starting at ``start`` (a quote), and the index after it."""
    out: list[str] = []
    i = start + 1
    while True:
        j = text.find(quote, i)
        if j < 0:
            what = "string" if quote == "'" else "quoted identifier"
            raise PartiQLSyntaxError(f"Unterminated {what}", pos)
        out.append(text[i:j])
        if text.startswith(quote, j + 1):  # a doubled quote stands for one
            out.append(quote)
            i = j + 2
            continue
        return "".join(out), j + 1


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an EOF token."""
    out: list[Token] = []
    i, n = 0, len(text)
    line, line_start = 1, 0
    while i < n:
        c = text[i]
        if c in _WS:
            if c == "\n":
                line, line_start = line + 1, i + 1
            i += 1
            continue
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        pos = Pos(line, i - line_start + 1)
        if c == "'" or c == '"':
            value, i = _quoted(text, i, c, pos)
            out.append(Token(Kind.STRING if c == "'" else Kind.QUOTED, value, pos))
            continue
        m = _WORD.match(text, i)
        if m:
            out.append(Token(Kind.WORD, m.group(), pos))
            i = m.end()
            continue
        m = _NUMBER.match(text, i)
        if m:
            out.append(Token(Kind.NUMBER, m.group(), pos))
            i = m.end()
            continue
        if c == "?":
            out.append(Token(Kind.PARAM, "?", pos))
            i += 1
            continue
        for p in _PUNCT:
            if text.startswith(p, i):
                out.append(Token(Kind.PUNCT, p, pos))
                i += len(p)
                break
        else:
            raise PartiQLSyntaxError(f"Unexpected character '{c}'", pos)
    out.append(Token(Kind.EOF, "", Pos(line, n - line_start + 1)))
    return out
