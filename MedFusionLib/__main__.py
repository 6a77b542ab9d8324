"""``python -m MedFusionLib`` = the ``medfusion`` command."""

import sys

from MedFusionLib.apps.cli import main

sys.exit(main())
