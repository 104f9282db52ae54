"""``python -m flopmetrics``: the same as the ``flopmetrics`` command."""

from .cli import main

raise SystemExit(main())
