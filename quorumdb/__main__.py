"""``python -m quorumdb`` is the ``quorumdb`` command."""

from quorumdb.api import early_stop

early_stop.install()  # first: a stop signal during the imports below must not kill the server

from quorumdb.cli import main  # noqa: E402

main()
