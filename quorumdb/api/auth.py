"""AWS Signature Version 4 verification, as DynamoDB does it (``quorumdb serve --auth``).

``Verifier.verify(request)`` checks one request, signed in its ``Authorization`` header or in
the query string (a presigned URL), against the configured access keys, and raises the error
DynamoDB answers, in DynamoDB's order and with its texts:

1. MissingAuthenticationTokenException: no signature at all (or not an ``AWS4-`` one);
   InvalidSignatureException when both the header and the query carry one.
2. IncompleteSignatureException: a missing ``Credential``/``Signature``/``SignedHeaders``
   parameter or date header; a date not in ISO-8601 basic format; an unknown algorithm; a
   credential that is not ``keyid/date/region/service/aws4_request``.
3. InvalidSignatureException: a date more than 15 minutes off the server's clock, ``host``
   not signed, a credential scope for another service, terminator or day.
4. UnrecognizedClientException: an unknown access key (or security token).
5. InvalidSignatureException: a signature that does not match the one computed here from the
   canonical request (the text names the canonical request and string to sign, as AWS does).

The canonical request follows the SigV4 specification (and botocore's signer): the method,
the normalized, URI-encoded path, the sorted query, the signed headers' trimmed values, and
the SHA-256 of the body as sent (before any Content-Encoding is undone).

The HTTP shell only builds a ``SignedRequest`` when ``--auth`` is on; without it nothing here
runs. This module does no I/O beyond ``load_credentials`` reading the credentials file.
"""

from __future__ import annotations

import calendar
import configparser
import datetime
import hashlib
import hmac
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from quorumdb.errors import (
    IncompleteSignatureError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
    UnrecognizedClientError,
)

__all__ = [
    "AccessKey",
    "SignedRequest",
    "Verifier",
    "parse_credentials",
    "load_credentials",
    "CREDENTIALS_ENV",
]

CREDENTIALS_ENV = "QUORUMDB_CREDENTIALS"
ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "dynamodb"
TERMINATOR = "aws4_request"
MAX_SKEW_S = 15 * 60
_ISO_BASIC = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
_MISSING_TOKEN = "Request is missing Authentication Token"
_BAD_TOKEN = "The security token included in the request is invalid."
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessKey:
    """One key pair a client may sign with (``token``: the session token it must send, if any)."""

    access_key_id: str
    secret: str
    token: str | None = None

    def __post_init__(self) -> None:
        if not self.access_key_id or not self.secret:
            raise ValueError("an access key needs an id and a secret")


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedRequest:
    """What the signature covers, as the HTTP shell received it."""

    method: str
    path: str  # the request target's path, still percent-encoded
    query: str  # the raw query string ('' if none)
    headers: tuple[tuple[str, str], ...]  # (lower-case name, value), in arrival order
    payload_sha256: str  # hex SHA-256 of the body bytes as sent

    def header(self, name: str) -> str | None:
        for n, v in self.headers:
            if n == name:
                return v
        return None


# -- credentials -------------------------------------------------------------------------------


def parse_credentials(text: str) -> dict[str, AccessKey]:
    """``AKID:SECRET[:TOKEN]`` entries separated by commas, blanks or newlines (``#`` comments).

    The AWS shared credentials file format (``[profile]`` sections with ``aws_access_key_id``
    and ``aws_secret_access_key``) is read as well.
    """
    if "aws_access_key_id" in text:
        return _parse_ini(text)
    keys: dict[str, AccessKey] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        for entry in line.replace(",", " ").split():
            akid, sep, rest = entry.partition(":")
            secret, _, token = rest.partition(":")
            if not sep or not akid or not secret:
                raise ValueError(f"credentials entry {entry[:20]!r}... is not AKID:SECRET")
            keys[akid] = AccessKey(access_key_id=akid, secret=secret, token=token or None)
    return keys


def _parse_ini(text: str) -> dict[str, AccessKey]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    keys: dict[str, AccessKey] = {}
    for section in parser.sections():
        sec = parser[section]
        akid, secret = sec.get("aws_access_key_id"), sec.get("aws_secret_access_key")
        if akid and secret:
            keys[akid] = AccessKey(access_key_id=akid, secret=secret, token=sec.get("aws_session_token"))
    return keys


def load_credentials(path: str | None, env: Mapping[str, str] = os.environ) -> dict[str, AccessKey]:
    """The keys of ``QUORUMDB_CREDENTIALS`` and of the file at ``path`` (both optional)."""
    keys = parse_credentials(env.get(CREDENTIALS_ENV, ""))
    if path is not None:
        with open(path, encoding="utf-8") as f:
            keys.update(parse_credentials(f.read()))
    return keys


# -- the canonical request ---------------------------------------------------------------------


def canonical_path(path: str) -> str:
    """The path as SigV4 signs it for every service but S3: dot segments removed, URI-encoded."""
    if not path:
        return "/"
    out: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if out:
                out.pop()
        elif seg and seg != ".":
            out.append(seg)
    norm = ("/" if path.startswith("/") else "") + "/".join(out) + ("/" if path.endswith("/") and out else "")
    return quote(norm, safe="/~")


def canonical_query(query: str, *, drop: str | None = None) -> str:
    pairs: list[tuple[str, str]] = []
    for part in query.split("&") if query else ():
        if not part:
            continue
        key, _, value = part.partition("=")
        key = quote(unquote(key), safe="-_.~")
        if key == drop:
            continue
        pairs.append((key, quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_headers(headers: Iterable[tuple[str, str]], signed: list[str]) -> str:
    values: dict[str, list[str]] = {name: [] for name in signed}
    for name, value in headers:
        got = values.get(name)
        if got is not None:
            got.append(" ".join(value.split()))
    return "".join(f"{name}:{','.join(values[name])}\n" for name in signed)


def canonical_request(req: SignedRequest, signed: list[str], signed_text: str, *, drop: str | None = None) -> str:
    return "\n".join(
        (
            req.method.upper(),
            canonical_path(req.path),
            canonical_query(req.query, drop=drop),
            canonical_headers(req.headers, signed),
            signed_text,
            req.payload_sha256,
        )
    )


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret).encode(), day)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, TERMINATOR)


# -- verification ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Parsed:
    """The signature parameters of one request, from its header or its query."""

    algorithm: str
    credential: str
    signed_headers: str
    signature: str
    amz_date: str
    in_query: bool
    expires_s: int | None = None


class Verifier:
    """Checks SigV4 signatures against a fixed set of access keys."""

    __slots__ = ("keys", "clock", "_signing_keys")

    def __init__(self, keys: Mapping[str, AccessKey], *, clock: Callable[[], float] = time.time) -> None:
        if not keys:
            raise ValueError("--auth needs at least one access key")
        self.keys = dict(keys)
        self.clock = clock
        self._signing_keys: dict[tuple[str, str, str], bytes] = {}

    def verify(self, req: SignedRequest) -> None:
        """Return if ``req`` is signed by a known key, else raise DynamoDB's error."""
        p = self._parse(req)
        when = _parse_iso_basic(p.amz_date)
        if when is None:
            raise IncompleteSignatureError(
                f"Date must be in ISO-8601 'basic format'. Got '{p.amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
            )
        self._check_time(when, p)
        signed = p.signed_headers.split(";") if p.signed_headers else []
        if "host" not in signed:
            raise InvalidSignatureError("'Host' must be a 'SignedHeader' in the AWS Authorization.")
        if p.algorithm != ALGORITHM:
            raise IncompleteSignatureError(
                f"Unsupported AWS 'algorithm': '{p.algorithm}' (only {ALGORITHM} for now). "
            )
        parts = p.credential.rstrip("/").split("/")
        if len(parts) != 5:
            raise IncompleteSignatureError(
                "Credential must have exactly 5 slash-delimited elements, "
                f"e.g. keyid/date/region/service/term, got '{p.credential}'"
            )
        akid, day, region, service, term = parts
        msg = ""
        if not region:
            msg += f"Credential should be scoped to a valid region, not '{region}'. "
        if service != SERVICE:
            msg += f"Credential should be scoped to correct service: '{SERVICE}'. "
        if term != TERMINATOR:
            msg += f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{term}'. "
        if day != p.amz_date[:8]:
            msg += (
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{day}' != '{p.amz_date[:8]}', from '{p.amz_date}'."
            )
        if msg:
            raise InvalidSignatureError(msg.rstrip())
        key = self.keys.get(akid)
        if key is None:
            raise UnrecognizedClientError(_BAD_TOKEN)
        creq = canonical_request(req, signed, p.signed_headers, drop="X-Amz-Signature" if p.in_query else None)
        scope = f"{day}/{region}/{service}/{term}"
        sts = f"{ALGORITHM}\n{p.amz_date}\n{scope}\n{hashlib.sha256(creq.encode()).hexdigest()}"
        expected = hmac.new(self._key(key, day, region), sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, p.signature):
            raise InvalidSignatureError(
                f"{_MISMATCH}\n\nThe Canonical String for this request should have been\n'{creq}'\n\n"
                f"The String-to-Sign should have been\n'{sts}'\n"
            )
        token = req.header("x-amz-security-token")
        if p.in_query:
            token = _query_params(req.query).get("X-Amz-Security-Token", token)
        if token != key.token and (token is not None or key.token is not None):
            raise UnrecognizedClientError(_BAD_TOKEN.rstrip("."))

    def _key(self, key: AccessKey, day: str, region: str) -> bytes:
        cache_key = (key.access_key_id, day, region)
        k = self._signing_keys.get(cache_key)
        if k is None:
            if len(self._signing_keys) > 1024:
                self._signing_keys.clear()
            k = self._signing_keys[cache_key] = signing_key(key.secret, day, region, SERVICE)
        return k

    def _parse(self, req: SignedRequest) -> _Parsed:
        header = req.header("authorization")
        query = _query_params(req.query) if req.query else {}
        in_query = "X-Amz-Algorithm" in query
        if header is not None and in_query:
            raise InvalidSignatureError(
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
            )
        if in_query:
            return _parse_query(query)
        if header is None or not header.strip().startswith("AWS4-"):
            raise MissingAuthenticationTokenError(_MISSING_TOKEN)
        return _parse_header(header, req)

    def _check_time(self, when: float, p: _Parsed) -> None:
        now = self.clock()
        if p.in_query and p.expires_s is not None:
            if when + p.expires_s < now:
                raise InvalidSignatureError(
                    f"Signature expired: {_iso_basic(when + p.expires_s)} is now earlier than {_iso_basic(now)}"
                )
            if when > now + MAX_SKEW_S:
                raise InvalidSignatureError(
                    f"Signature not yet current: {p.amz_date} is still later than "
                    f"{_iso_basic(now + MAX_SKEW_S)} ({_iso_basic(now)} + 15 min.)"
                )
            return
        if when < now - MAX_SKEW_S:
            raise InvalidSignatureError(
                f"Signature expired: {p.amz_date} is now earlier than {_iso_basic(now - MAX_SKEW_S)} "
                f"({_iso_basic(now)} - 15 min.)"
            )
        if when > now + MAX_SKEW_S:
            raise InvalidSignatureError(
                f"Signature not yet current: {p.amz_date} is still later than {_iso_basic(now + MAX_SKEW_S)} "
                f"({_iso_basic(now)} + 15 min.)"
            )


def _parse_header(header: str, req: SignedRequest) -> _Parsed:
    text = header.strip()
    algorithm, _, rest = text.partition(" ")
    params: dict[str, str] = {}
    for item in re.split(r"[, ]", rest):
        item = item.strip()
        if item:
            k, _, v = item.partition("=")
            params[k] = v
    msg = ""
    for name in ("Credential", "Signature", "SignedHeaders"):
        if not params.get(name):
            msg += f"Authorization header requires '{name}' parameter. "
    amz_date = req.header("x-amz-date")
    if amz_date is None:
        http_date = req.header("date")
        if http_date is not None:
            amz_date = _http_date_as_iso(http_date)
        else:
            msg += "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
    if msg:
        raise IncompleteSignatureError(msg + "Authorization=" + header)
    assert amz_date is not None
    return _Parsed(
        algorithm=algorithm,
        credential=params["Credential"],
        signed_headers=params["SignedHeaders"],
        signature=params["Signature"],
        amz_date=amz_date,
        in_query=False,
    )


def _parse_query(query: dict[str, str]) -> _Parsed:
    msg = ""
    for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"):
        if not query.get(name):
            msg += f"AWS query-string parameters must include '{name}'. "
    if msg:
        raise IncompleteSignatureError(msg + "Re-examine the query-string parameters.")
    expires: int | None = None
    raw_expires = query.get("X-Amz-Expires")
    if raw_expires is not None:
        try:
            expires = int(raw_expires)
        except ValueError:
            raise IncompleteSignatureError(
                f"X-Amz-Expires should be a number, got '{raw_expires}'"
            ) from None
    return _Parsed(
        algorithm=query["X-Amz-Algorithm"],
        credential=query["X-Amz-Credential"],
        signed_headers=query["X-Amz-SignedHeaders"],
        signature=query["X-Amz-Signature"],
        amz_date=query["X-Amz-Date"],
        in_query=True,
        expires_s=expires,
    )


def _query_params(query: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in query.split("&"):
        k, _, v = part.partition("=")
        if k:
            out[unquote(k)] = unquote(v)
    return out


def _parse_iso_basic(text: str) -> float | None:
    m = _ISO_BASIC.fullmatch(text)
    if m is None:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups())
    try:
        return float(_timegm(y, mo, d, h, mi, s))
    except ValueError:
        return None


def _timegm(y: int, mo: int, d: int, h: int, mi: int, s: int) -> int:
    datetime.datetime(y, mo, d, h, mi, s)  # raises ValueError for impossible dates
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


def _iso_basic(t: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


def _http_date_as_iso(text: str) -> str:
    """A ``Date`` header (RFC 7231) in ISO-8601 basic format; the text itself if it does not parse."""
    try:
        return _iso_basic(parsedate_to_datetime(text).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return text
