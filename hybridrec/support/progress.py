"""Progress bars that show only where someone is watching.

A bar is drawn when it is asked for (``train.progress``, ``--quiet`` turns it off) and
stderr is a terminal: redirected logs get no carriage-return lines. ``TQDM_DISABLE=1``
turns every bar off; ``HYBRIDREC_PROGRESS=always`` draws them even into a file or pipe.
"""

from __future__ import annotations

import os
import sys

_TRUE = ("1", "true", "yes", "on", "always")


def show_progress(asked: bool = True) -> bool:
    """Whether a bar that was ``asked`` for is drawn (see the module docstring)."""
    if not asked or os.environ.get("TQDM_DISABLE", "").strip().lower() in _TRUE:
        return False
    if os.environ.get("HYBRIDREC_PROGRESS", "").strip().lower() in _TRUE:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs):
    """A ``tqdm`` bar over ``iterable`` (or with ``total=``), drawn when :func:`show_progress`."""
    from tqdm import tqdm

    return tqdm(iterable, disable=not show_progress(enabled), **kwargs)
