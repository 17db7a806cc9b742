"""python3 -m kubesalt.bootstrap: what scripts/bootstrap.sh runs."""

import sys

from kubesalt.bootstrap.cli import main

sys.exit(main())
