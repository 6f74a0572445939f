"""Tokens of DynamoDB's expression language, and the syntax-error message built from them.

The lexer never fails: a character it does not know becomes a one-character ``UNKNOWN``
token, so the parser reports it as DynamoDB does (``Syntax error; token: "-", near: "a-b"``).
Whitespace separates tokens and is not kept; positions index the original text so that the
``near`` excerpt keeps the user's spacing. Nothing here knows any grammar.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Kind", "Token", "tokenize", "syntax_message"]


class Kind(Enum):
    NAME = "name"  # identifier: a-z A-Z _ then a-z A-Z 0-9 _
    NAME_REF = "name_ref"  # #identifier
    VALUE_REF = "value_ref"  # :identifier
    NUMBER = "number"  # digits (list indexes)
    OP = "op"  # = <> < <= > >= ( ) [ ] , . + -
    UNKNOWN = "unknown"
    EOF = "eof"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    start: int
    end: int


_WS = frozenset(" \t\r\n")
_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_DIGITS = frozenset("0123456789")
_IDENT_PART = _IDENT_START | _DIGITS
_TWO_CHAR_OPS = frozenset({"<>", "<=", ">="})
_ONE_CHAR_OPS = frozenset("=<>()[],.+-")


def tokenize(text: str) -> tuple[Token, ...]:
    """Split ``text`` into tokens, ending with an EOF token at ``len(text)``."""
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _WS:
            i += 1
            continue
        start = i
        if c in _IDENT_START:
            i += 1
            while i < n and text[i] in _IDENT_PART:
                i += 1
            out.append(Token(Kind.NAME, text[start:i], start, i))
        elif c in _DIGITS:
            i += 1
            while i < n and text[i] in _DIGITS:
                i += 1
            out.append(Token(Kind.NUMBER, text[start:i], start, i))
        elif c == "#" or c == ":":
            i += 1
            while i < n and text[i] in _IDENT_PART:
                i += 1
            if i == start + 1:
                out.append(Token(Kind.UNKNOWN, c, start, i))
            else:
                kind = Kind.NAME_REF if c == "#" else Kind.VALUE_REF
                out.append(Token(kind, text[start:i], start, i))
        elif text[i : i + 2] in _TWO_CHAR_OPS:
            i += 2
            out.append(Token(Kind.OP, text[start:i], start, i))
        elif c in _ONE_CHAR_OPS:
            i += 1
            out.append(Token(Kind.OP, c, start, i))
        else:
            i += 1
            out.append(Token(Kind.UNKNOWN, c, start, i))
    out.append(Token(Kind.EOF, "<EOF>", n, n))
    return tuple(out)


def syntax_message(text: str, tokens: tuple[Token, ...], index: int) -> str:
    """DynamoDB's syntax error for the token at ``index``: the token, and the text from the
    token before it to the token after it."""
    tok = tokens[index]
    start = tokens[index - 1].start if index > 0 else tok.start
    if tok.kind is Kind.EOF:
        end = len(text)
    else:
        nxt = tokens[index + 1]
        end = nxt.end if nxt.kind is not Kind.EOF else tok.end
    return f'Syntax error; token: "{tok.text}", near: "{text[start:end]}"'
