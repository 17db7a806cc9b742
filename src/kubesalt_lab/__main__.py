"""python -m kubesalt.lab: what scripts/lab.sh runs."""

import sys

from kubesalt.lab.cli import main

sys.exit(main())
