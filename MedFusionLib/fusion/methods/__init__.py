"""Importing this package registers every shipped fusion method (one file per method).

``DEFAULT_METHOD`` names the method used when the user names none: the best one we ship, chosen by the
evaluation in ``docs/evaluation.md``.
"""

from . import guided_filter, laplacian_pyramid, maximum, mean  # noqa: F401
from . import densefuse_lite, ifcnn_lite  # noqa: F401  (deep methods; weights load lazily)

DEFAULT_METHOD = "guided-filter"
