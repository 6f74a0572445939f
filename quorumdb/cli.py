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

import click

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
            code = run_workers(host, port, data_dir, workers, log_level.lower())
        else:
            code = run(host, port, data_dir, in_memory, reuse_port=reuse_port)
    except OSError as exc:  # e.g. the port is taken
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


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
