"""python -m kubesalt.upgrade: what scripts/upgrade.sh and scripts/downgrade.sh run."""

import sys

from kubesalt.upgrade.cli import main

sys.exit(main())
