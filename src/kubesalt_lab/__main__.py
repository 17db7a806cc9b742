"""python -m kubesalt_lab: what scripts/lab.sh runs."""

import sys

from kubesalt_lab.cli import main

sys.exit(main())
