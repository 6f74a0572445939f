"""DynamoDB's PartiQL subset: statement text -> typed tree (``parse``, cached by text) -> bound
to one request's Parameters and translated to the expression language (``bind``), whose
conditions and updates evaluate and apply it. ``keys`` finds what a WHERE clause says about a
table's key, so statements become the existing reads and writes (GetItem, Query, Scan,
PutItem, UpdateItem, DeleteItem).

Nothing in this package does I/O or knows the HTTP shell; it raises ``PartiQLSyntaxError``
(with a line and column) for malformed text and ``ValidationError`` for everything else.
"""

from __future__ import annotations

from quorumdb.partiql import ast, bind, keys
from quorumdb.partiql.lexer import PartiQLSyntaxError, Pos
from quorumdb.partiql.parser import Parsed, parse

__all__ = ["ast", "bind", "keys", "parse", "Parsed", "PartiQLSyntaxError", "Pos"]
