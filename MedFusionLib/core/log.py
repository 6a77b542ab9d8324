"""Warnings and decisions the library wants a user to see, through the ``MedFusionLib`` logger.

The library never prints: it logs one line per event (``warn`` for a problem it worked around, ``note`` for a
decision it took, e.g. a guessed modality). Front-ends decide how to show them: the CLI prints
``medfusion: warning: ...`` / ``medfusion: ...`` lines on stderr, Slicer shows them in its log.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("MedFusionLib")


def warn(message: str) -> None:
    """One warning line (something was worked around: NaN filled, headers disagree...)."""
    logger.warning(message)


def note(message: str) -> None:
    """One informational line (a decision taken on the user's behalf, e.g. an auto-detected modality)."""
    logger.info(message)
