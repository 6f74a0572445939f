"""DynamoDB's item size, which drives the 400 KB item limit, capacity units and the 1 MB pages.

The rules (DynamoDB's documentation, refined by dynalite's measurements of the real service):

- an attribute counts the UTF-8 bytes of its name plus the size of its value;
- ``S``: UTF-8 bytes; ``B``: raw (decoded) bytes; ``NULL`` and ``BOOL``: 1 byte;
- ``N``: the length of DynamoDB's base-100 serialization of the number: zero is 1 byte;
  otherwise 1 exponent byte plus one byte per pair of digits, where pairs are aligned on the
  decimal point (so ``12`` is 1 byte of digits but ``1.2`` and ``120`` are 2), plus 1 byte for a
  negative number whose digits take fewer than 20 bytes (its terminator). This is "about 1 byte
  per 2 significant digits plus 1" made exact;
- ``SS``, ``NS``, ``BS``: the sum of their elements' sizes;
- ``M``: 3 bytes plus, per entry, 1 byte + the UTF-8 bytes of its name + its value's size;
- ``L``: 3 bytes plus, per element, 1 byte + its size.

Values are expected to be validated (``model.values``): canonical numbers and base64. This
module only measures; it never changes an item.
"""

from __future__ import annotations

from quorumdb.errors import ValidationError
from quorumdb.model.numbers import MAX_DIGITS, canonical
from quorumdb.model.types import AttributeValue, Item

__all__ = [
    "item_size",
    "value_size",
    "number_size",
    "check_item_size",
    "ITEM_SIZE_MAX",
    "ITEM_TOO_BIG",
    "UPDATED_ITEM_TOO_BIG",
]

ITEM_SIZE_MAX = 400 * 1024
ITEM_TOO_BIG = "Item size has exceeded the maximum allowed size"
UPDATED_ITEM_TOO_BIG = "Item size to update has exceeded the maximum allowed size"

_NUMBER_SIZES: dict[str, int] = {}
_NUMBER_SIZES_MAX = 65536


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _b64_len(text: str) -> int:
    if not text:
        return 0
    pad = 2 if text.endswith("==") else 1 if text.endswith("=") else 0
    return len(text) // 4 * 3 - pad


def number_size(text: str) -> int:
    """Bytes DynamoDB counts for the number ``text``."""
    hit = _NUMBER_SIZES.get(text)
    if hit is not None:
        return hit
    if text.isdigit() and text.isascii() and text[0] != "0" and len(text) <= MAX_DIGITS:
        # A positive integer in canonical form (the commonest number): no parsing needed.
        ndigits = len(text.rstrip("0"))
        return 1 + (ndigits + (len(text) % 2) + 1) // 2
    c = canonical(text)
    if c == "0":
        size = 1
    else:
        negative = c[0] == "-"
        body = c[1:] if negative else c
        whole, _, frac = body.partition(".")
        if whole != "0":
            exp = len(whole) - 1
            ndigits = len((whole + frac).rstrip("0"))
        else:
            stripped = frac.lstrip("0")
            exp = len(stripped) - len(frac) - 1
            ndigits = len(stripped)
        # Base-100 digits are aligned so that the decimal point falls between pairs: an even
        # adjusted exponent puts the leading digit alone in its pair.
        digit_bytes = (ndigits + (exp % 2 == 0) + 1) // 2
        size = 1 + digit_bytes + (1 if negative and digit_bytes < 20 else 0)
    if len(_NUMBER_SIZES) < _NUMBER_SIZES_MAX:
        _NUMBER_SIZES[text] = size
    return size


def value_size(av: AttributeValue) -> int:
    """Bytes DynamoDB counts for one attribute value (without its name)."""
    # Plain loops rather than sum(generator), and the common S and N first by dict lookup:
    # this runs on every write and every page read.
    v = av.get("S")
    if v is not None:
        return len(v) if v.isascii() else len(v.encode("utf-8"))
    v = av.get("N")
    if v is not None:
        hit = _NUMBER_SIZES.get(v)
        return hit if hit is not None else number_size(v)
    for tag, v in av.items():
        if tag == "M":
            total = 3
            for k, x in v.items():
                total += 1 + (len(k) if k.isascii() else len(k.encode("utf-8"))) + value_size(x)
            return total
        if tag == "L":
            total = 3
            for x in v:
                total += 1 + value_size(x)
            return total
        if tag == "BOOL" or tag == "NULL":
            return 1
        if tag == "B":
            return _b64_len(v)
        if tag == "SS":
            total = 0
            for x in v:
                total += len(x) if x.isascii() else len(x.encode("utf-8"))
            return total
        if tag == "NS":
            total = 0
            for x in v:
                total += number_size(x)
            return total
        if tag == "BS":
            total = 0
            for x in v:
                total += _b64_len(x)
            return total
        raise ValueError(f"unknown attribute type {tag!r}")
    raise ValueError("empty attribute value")


def item_size(item: Item) -> int:
    """Bytes DynamoDB counts for an item: every name (UTF-8) plus every value."""
    total = 0
    for name, av in item.items():
        total += (len(name) if name.isascii() else len(name.encode("utf-8"))) + value_size(av)
    return total


def check_item_size(item: Item, *, message: str = ITEM_TOO_BIG) -> int:
    """Return ``item_size(item)``, raising ``ValidationError(message)`` above 400 KB.

    PutItem uses the default message; UpdateItem passes ``UPDATED_ITEM_TOO_BIG``.
    """
    size = item_size(item)
    if size > ITEM_SIZE_MAX:
        raise ValidationError(message)
    return size
