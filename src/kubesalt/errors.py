"""The one exception base of kubesalt; loader modules translate it once."""


class KubesaltError(Exception):
    """Base of every error kubesalt raises on purpose."""


class ConfigError(KubesaltError):
    """bootstrap.yaml (or a value derived from it) is invalid."""


class AddressError(KubesaltError):
    """No usable address for a node, or an address outside its network."""
