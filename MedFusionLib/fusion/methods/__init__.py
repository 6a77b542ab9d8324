"""Importing this package registers every shipped fusion method (one file per method).

``DEFAULT_METHOD`` names the method used when the user names none: the best one we ship, chosen by the
evaluation in ``docs/evaluation.md``.
"""

from . import guided_filter, laplacian_pyramid, maximum, mean  # noqa: F401

DEFAULT_METHOD = "guided-filter"
