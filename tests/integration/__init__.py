"""Black-box tests: a real ``quorumdb serve`` process driven by boto3, the AWS CLI and PynamoDB.

Run them with ``.venv/bin/pytest tests/integration``. The suite starts one shared server on a
random port (tests that crash and restart a server start their own). To check the suite's own
expectations against another implementation, point it at a running server, e.g. dynalite::

    QUORUMDB_TEST_ENDPOINT=http://127.0.0.1:4567 .venv/bin/pytest tests/integration

Places where dynalite is known to differ from DynamoDB are marked "dynalite deviates" in the
tests; those tests fail there by design.
"""
