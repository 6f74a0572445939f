"""The ``quorumdb`` command line: ``quorumdb serve`` starts a single-node server.

It only parses options and hands them to ``quorumdb.api.server.run``; it never opens storage
or sockets itself.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from quorumdb.api.auth import Verifier

__all__ = ["main", "serve"]

LOG_LEVELS = ["debug", "info", "warning", "error"]
STATUS_DELAY_ENV = "QUORUMDB_TABLE_STATUS_DELAY_MS"  # quorumdb.api.lifecycle reads it


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="quorumdb")
def main() -> None:
    """QuorumDB: a durable, DynamoDB-compatible database."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0 picks a free one)."
)
@click.option(
    "--data-dir",
    default="./quorumdb-data",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory of the LMDB data files.",
)
@click.option("--in-memory", is_flag=True, help="Keep all data in memory (lost on exit).")
@click.option(
    "--log-level", default="warning", show_default=True, type=click.Choice(LOG_LEVELS, case_sensitive=False)
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 256),
    help="Worker processes sharing the port and the data directory "
    "[default: one per core; 1 with --in-memory].",
)
@click.option(
    "--auth",
    is_flag=True,
    help="Check AWS Signature V4 on every request, as DynamoDB does, against the keys of "
    "--credentials and $QUORUMDB_CREDENTIALS (\"AKID:SECRET,...\"). Default: any credentials.",
)
@click.option(
    "--credentials",
    "credentials_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="File of access keys for --auth: AKID:SECRET[:TOKEN] entries, or an AWS credentials file.",
)
@click.option(
    "--table-status-delay-ms",
    default=None,
    type=click.IntRange(0, 3_600_000),
    help="How long tables and indexes report CREATING / UPDATING / DELETING (as DynamoDB does "
    "while it works) [default: 0, or $QUORUMDB_TABLE_STATUS_DELAY_MS].",
)
@click.option("--reuse-port", is_flag=True, hidden=True, help="Internal: a worker of --workers.")
def serve(
    host: str,
    port: int,
    data_dir: str,
    in_memory: bool,
    log_level: str,
    workers: int | None,
    table_status_delay_ms: int | None,
    auth: bool,
    credentials_file: str | None,
    reuse_port: bool,
) -> None:
    """Serve the DynamoDB API on HTTP until SIGINT/SIGTERM."""
    from quorumdb.api import early_stop

    early_stop.install()  # (again) for the ``quorumdb`` script, which skips ``__main__``
    if table_status_delay_ms is not None:
        # Read by the handlers; worker processes inherit it with the environment.
        os.environ[STATUS_DELAY_ENV] = str(table_status_delay_ms)
    if workers is None:
        workers = 1 if in_memory or reuse_port else (os.cpu_count() or 1)
    if workers > 1 and in_memory:
        raise click.UsageError("--workers needs a data directory: in-memory data cannot be shared")
    verifier = _verifier(auth, credentials_file)
    if reuse_port:
        _die_with_supervisor()
    logging.basicConfig(
        level=getattr(logging, log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from quorumdb.api.server import run, run_workers

    try:
        if workers > 1:
            extra = ["--auth"] if auth else []
            if credentials_file is not None:
                extra += ["--credentials", os.path.abspath(credentials_file)]
            code = run_workers(host, port, data_dir, workers, log_level.lower(), extra)
        else:
            code = run(host, port, data_dir, in_memory, reuse_port=reuse_port, verifier=verifier)
    except OSError as exc:  # e.g. the port is taken
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


def _verifier(auth: bool, credentials_file: str | None) -> Verifier | None:
    """The signature checker of ``--auth`` (None without it); bad or no keys are a usage error."""
    if not auth:
        if credentials_file is not None:
            raise click.UsageError("--credentials is only used with --auth")
        return None
    from quorumdb.api.auth import CREDENTIALS_ENV, Verifier, load_credentials

    try:
        keys = load_credentials(credentials_file)
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"cannot read the credentials: {exc}") from exc
    if not keys:
        raise click.UsageError(f"--auth needs access keys: --credentials FILE or ${CREDENTIALS_ENV}")
    return Verifier(keys)


def _die_with_supervisor() -> None:
    """A worker of ``--workers`` is killed with its supervisor (Linux PR_SET_PDEATHSIG), so a
    kill -9 of the server is a crash of the whole server, never orphaned workers that keep
    serving the port."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the supervisor's SIGTERM forwarding remains
        return
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os._exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
