"""kubesalt: the pure logic of the installer.

No Salt dunders live here: the Salt loader modules, the scripts and the tests
all import these modules directly (see docs/decisions.md).
"""

__version__ = "0.1.0"
