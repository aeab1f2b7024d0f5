"""``python -m ctxfy``: the same as the ``ctxfy`` command."""

from ctxfy.cli import main

raise SystemExit(main())
