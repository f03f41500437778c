"""``python -m spoof_lightning <command> ...``: the ``spoof-lightning`` command."""

from spoof_lightning.cli import main

main()
