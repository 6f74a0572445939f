"""``python -m quorumdb`` is the ``quorumdb`` command."""

from quorumdb.cli import main

main()
