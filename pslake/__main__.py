"""``python -m pslake``: the same as the ``pslake`` console script."""

from pslake.cli import app

app()
