"""``python -m hybridrec``: the ``hybridrec`` command (:mod:`hybridrec.cli`)."""

import sys

from .cli import main

sys.exit(main())
