"""SigV4 verification (quorumdb.api.auth) against botocore's own signer.

Requests are signed by botocore (``SigV4Auth`` / ``SigV4QueryAuth``) exactly as boto3 sends
them, turned into the ``SignedRequest`` the HTTP shell builds, then verified, tampered with,
re-dated, or signed with wrong keys.
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
import urllib.parse
from pathlib import Path
from unittest import mock

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from quorumdb.api.auth import (
    AccessKey,
    SignedRequest,
    Verifier,
    canonical_path,
    canonical_query,
    load_credentials,
    parse_credentials,
)
from quorumdb.errors import (
    DynamoError,
    IncompleteSignatureError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
    UnrecognizedClientError,
)

NOW = calendar.timegm((2024, 6, 9, 10, 0, 15, 0, 0, 0))  # 20240609T100015Z
AKID, SECRET = "AKIDQUORUMTEST", "s3cr3t/Key+example"
KEYS = {AKID: AccessKey(access_key_id=AKID, secret=SECRET)}
BODY = b'{"TableName":"t"}'
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)


def verifier(now: float = NOW, keys: dict[str, AccessKey] | None = None) -> Verifier:
    return Verifier(KEYS if keys is None else keys, clock=lambda: now)


def botocore_request(
    *,
    akid: str = AKID,
    secret: str = SECRET,
    token: str | None = None,
    when: float = NOW,
    region: str = "us-east-1",
    service: str = "dynamodb",
    url: str = "http://localhost:8000/",
    body: bytes = BODY,
    query_auth: bool = False,
) -> AWSRequest:
    req = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.DescribeTable",
            "User-Agent": "Boto3/1.x test",
        },
    )
    creds = Credentials(akid, secret, token)
    signer = SigV4QueryAuth(creds, service, region, expires=300) if query_auth else SigV4Auth(creds, service, region)
    # botocore takes the signing time from the wall clock: pin it.
    pinned = datetime.datetime.fromtimestamp(when, datetime.UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", lambda *a, **k: pinned):
        signer.add_auth(req)
    return req


def as_received(req: AWSRequest, *, body: bytes | None = None, drop: str | None = None,
                change: tuple[str, str] | None = None) -> SignedRequest:
    """What the server sees of a request botocore sent (optionally tampered with)."""
    url = urllib.parse.urlsplit(req.url)
    headers = [(k.lower(), v) for k, v in req.headers.items()]
    if "host" not in dict(headers):
        headers.append(("host", url.netloc))
    if drop is not None:
        headers = [(k, v) for k, v in headers if k != drop]
    if change is not None:
        headers = [(k, change[1] if k == change[0] else v) for k, v in headers]
    data = req.body if body is None else body
    assert isinstance(data, bytes)
    return SignedRequest(
        method=req.method or "POST",
        path=url.path,
        query=url.query,
        headers=tuple(headers),
        payload_sha256=hashlib.sha256(data).hexdigest(),
    )


def error(v: Verifier, req: SignedRequest) -> DynamoError:
    with pytest.raises(DynamoError) as info:
        v.verify(req)
    return info.value


def raw(headers: dict[str, str], *, query: str = "") -> SignedRequest:
    return SignedRequest(
        method="POST", path="/", query=query, headers=tuple((k.lower(), v) for k, v in headers.items()),
        payload_sha256=hashlib.sha256(BODY).hexdigest(),
    )


# -- accepted ------------------------------------------------------------------------------------


def test_a_botocore_signature_verifies() -> None:
    verifier().verify(as_received(botocore_request()))


def test_any_region_and_path_normalization_verify() -> None:
    verifier().verify(as_received(botocore_request(region="eu-west-3")))
    verifier().verify(as_received(botocore_request(url="http://localhost:8000/a/./b/../c%20d/")))
    verifier().verify(as_received(botocore_request(url="http://localhost:8000/?b=2&a=1&a=0&x=%2F")))


def test_clock_skew_up_to_15_minutes_is_accepted() -> None:
    req = as_received(botocore_request())
    verifier(now=NOW + 15 * 60).verify(req)
    verifier(now=NOW - 15 * 60).verify(req)


def test_a_presigned_query_verifies() -> None:
    verifier(now=NOW + 60).verify(as_received(botocore_request(query_auth=True)))


def test_a_session_token_must_match() -> None:
    keys = {AKID: AccessKey(access_key_id=AKID, secret=SECRET, token="tok")}
    verifier(keys=keys).verify(as_received(botocore_request(token="tok")))
    err = error(verifier(keys=keys), as_received(botocore_request(token="other")))
    assert isinstance(err, UnrecognizedClientError)
    assert err.message == "The security token included in the request is invalid"
    err = error(verifier(), as_received(botocore_request(token="tok")))  # the key has no token
    assert isinstance(err, UnrecognizedClientError)


# -- refused -------------------------------------------------------------------------------------


def test_wrong_secret_is_invalid_signature_with_dynamodbs_text() -> None:
    err = error(verifier(), as_received(botocore_request(secret="wrong")))
    assert isinstance(err, InvalidSignatureError)
    assert err.message.startswith(MISMATCH + "\n\nThe Canonical String for this request should have been\n'POST\n/\n")
    assert "\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20240609T100015Z\n" in err.message
    assert err.body()["__type"] == "com.amazon.coral.service#InvalidSignatureException"


def test_unknown_access_key_is_unrecognized_client() -> None:
    err = error(verifier(), as_received(botocore_request(akid="AKIDUNKNOWN")))
    assert isinstance(err, UnrecognizedClientError)
    assert err.message == "The security token included in the request is invalid."
    assert err.body()["__type"] == "com.amazon.coral.service#UnrecognizedClientException"


@pytest.mark.parametrize(
    "tamper",
    [
        {"body": b'{"TableName":"u"}'},
        {"change": ("x-amz-target", "DynamoDB_20120810.DeleteTable")},
        {"change": ("host", "elsewhere:8000")},
        {"change": ("content-type", "application/json")},
        {"drop": "x-amz-target"},
    ],
    ids=["body", "target", "host", "content-type", "dropped-header"],
)
def test_tampered_requests_fail(tamper: dict[str, object]) -> None:
    req = as_received(botocore_request(), **tamper)  # type: ignore[arg-type]
    err = error(verifier(), req)
    assert isinstance(err, InvalidSignatureError) and err.message.startswith(MISMATCH)


def test_an_unsigned_header_may_change() -> None:
    # botocore signs every header it sends; one added on the way (a proxy's) is not covered.
    req = as_received(botocore_request())
    req = SignedRequest(
        method=req.method, path=req.path, query=req.query, headers=(*req.headers, ("via", "proxy")),
        payload_sha256=req.payload_sha256,
    )
    verifier().verify(req)


def test_expired_and_future_signatures() -> None:
    req = as_received(botocore_request())
    err = error(verifier(now=NOW + 15 * 60 + 1), req)
    assert isinstance(err, InvalidSignatureError)
    assert err.message == (
        "Signature expired: 20240609T100015Z is now earlier than 20240609T100016Z (20240609T101516Z - 15 min.)"
    )
    err = error(verifier(now=NOW - 15 * 60 - 1), req)
    assert isinstance(err, InvalidSignatureError)
    assert err.message == (
        "Signature not yet current: 20240609T100015Z is still later than 20240609T100014Z "
        "(20240609T094514Z + 15 min.)"
    )


def test_expired_presigned_query() -> None:
    req = as_received(botocore_request(query_auth=True))
    err = error(verifier(now=NOW + 301), req)
    assert isinstance(err, InvalidSignatureError)
    assert err.message.startswith("Signature expired: 20240609T100515Z is now earlier than 20240609T100516Z")


def test_missing_authorization() -> None:
    err = error(verifier(), raw({"host": "h", "x-amz-date": "20240609T100015Z"}))
    assert isinstance(err, MissingAuthenticationTokenError)
    assert err.message == "Request is missing Authentication Token"
    assert err.body() == {
        "__type": "com.amazon.coral.service#MissingAuthenticationTokenException",
        "message": "Request is missing Authentication Token",
    }
    err = error(verifier(), raw({"authorization": "AWS3 abc", "x-amz-date": "20240609T100015Z"}))
    assert isinstance(err, MissingAuthenticationTokenError)


def test_incomplete_authorization_header() -> None:
    err = error(verifier(), raw({"authorization": "AWS4-HMAC-SHA256 Signature=b"}))
    assert isinstance(err, IncompleteSignatureError)
    assert err.message == (
        "Authorization header requires 'Credential' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=AWS4-HMAC-SHA256 Signature=b"
    )
    assert err.body()["__type"] == "com.amazon.coral.service#IncompleteSignatureException"


AUTH = "AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders={signed}, Signature=abc"


@pytest.mark.parametrize(
    ("cred", "signed", "date", "kind", "message"),
    [
        ("k/20240609/us-east-1/dynamodb/aws4_request", "host", "201", IncompleteSignatureError,
         "Date must be in ISO-8601 'basic format'. Got '201'. See http://en.wikipedia.org/wiki/ISO_8601"),
        ("k/20240609/us-east-1/dynamodb/aws4_request", "x-amz-date", "20240609T100015Z", InvalidSignatureError,
         "'Host' must be a 'SignedHeader' in the AWS Authorization."),
        ("a/b/c/d", "host", "20240609T100015Z", IncompleteSignatureError,
         "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'a/b/c/d'"),
        ("a/b/c/d/e", "host", "20240609T100015Z", InvalidSignatureError,
         "Credential should be scoped to correct service: 'dynamodb'. "
         "Credential should be scoped with a valid terminator: 'aws4_request', not 'e'. "
         "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
         "'b' != '20240609', from '20240609T100015Z'."),
    ],
)
def test_malformed_signature_parameters(cred: str, signed: str, date: str, kind: type, message: str) -> None:
    req = raw({"authorization": AUTH.format(cred=cred, signed=signed), "x-amz-date": date, "host": "h"})
    err = error(verifier(), req)
    assert isinstance(err, kind)
    assert err.message == message


def test_unsupported_algorithm() -> None:
    cred = "k/20240609/us-east-1/dynamodb/aws4_request"
    req = raw({"authorization": AUTH.format(cred=cred, signed="host").replace("SHA256", "SHA25"),
               "x-amz-date": "20240609T100015Z"})
    err = error(verifier(), req)
    assert isinstance(err, IncompleteSignatureError)
    assert err.message == "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA25' (only AWS4-HMAC-SHA256 for now). "


def test_header_and_query_signature_together() -> None:
    req = raw({"authorization": "AWS4-HMAC-SHA256 x"}, query="X-Amz-Algorithm=AWS4-HMAC-SHA256")
    err = error(verifier(), req)
    assert isinstance(err, InvalidSignatureError)
    assert err.message == "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."


def test_incomplete_query_signature() -> None:
    err = error(verifier(), raw({}, query="X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240609T100015Z"))
    assert isinstance(err, IncompleteSignatureError)
    assert err.message == (
        "AWS query-string parameters must include 'X-Amz-Credential'. "
        "AWS query-string parameters must include 'X-Amz-Signature'. "
        "AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
        "Re-examine the query-string parameters."
    )


def test_date_header_instead_of_x_amz_date() -> None:
    # A client may date the request with Date (RFC 7231) instead of X-Amz-Date.
    req = botocore_request()
    signed = as_received(req, drop="x-amz-date")
    err = error(verifier(), signed)
    assert isinstance(err, IncompleteSignatureError) and "'X-Amz-Date' or a 'Date' header" in err.message
    dated = SignedRequest(
        method=signed.method, path=signed.path, query=signed.query,
        headers=(*signed.headers, ("date", "Sun, 09 Jun 2024 10:00:15 GMT")), payload_sha256=signed.payload_sha256,
    )
    err = error(verifier(), dated)  # the date was signed as x-amz-date, so the signature differs
    assert isinstance(err, InvalidSignatureError) and err.message.startswith(MISMATCH)
    assert "\n20240609T100015Z\n" in err.message  # but the Date header was read as the signing time


# -- canonical forms -----------------------------------------------------------------------------


def test_canonical_path_and_query() -> None:
    assert canonical_path("") == "/"
    assert canonical_path("/a/./b/../c/") == "/a/c/"
    assert canonical_path("/a b") == "/a%20b"
    assert canonical_path("/a%20b") == "/a%2520b"  # encoded twice, as every service but S3
    assert canonical_query("b=2&a=1&a=0") == "a=0&a=1&b=2"
    assert canonical_query("x=%2f&y=a b") == "x=%2F&y=a%20b"
    assert canonical_query("X-Amz-Signature=abc&a=1", drop="X-Amz-Signature") == "a=1"


# -- credentials ---------------------------------------------------------------------------------


def test_parse_credentials_formats(tmp_path: Path) -> None:
    keys = parse_credentials("AKID1:secret1, AKID2:se:cret\n# comment\nAKID3:s3  # trailing\n")
    assert keys["AKID1"].secret == "secret1"
    assert keys["AKID2"] == AccessKey(access_key_id="AKID2", secret="se", token="cret")
    assert set(keys) == {"AKID1", "AKID2", "AKID3"}
    ini = "[default]\naws_access_key_id = AKIDINI\naws_secret_access_key = iniSecret\n[other]\nregion=x\n"
    assert parse_credentials(ini) == {"AKIDINI": AccessKey(access_key_id="AKIDINI", secret="iniSecret")}
    with pytest.raises(ValueError):
        parse_credentials("no-colon-here")
    f = tmp_path / "creds"
    f.write_text("AKIDFILE:fileSecret\n")
    keys = load_credentials(str(f), env={"QUORUMDB_CREDENTIALS": "AKIDENV:envSecret"})
    assert set(keys) == {"AKIDFILE", "AKIDENV"}
    assert load_credentials(None, env={}) == {}


def test_a_verifier_needs_keys() -> None:
    with pytest.raises(ValueError):
        Verifier({})
