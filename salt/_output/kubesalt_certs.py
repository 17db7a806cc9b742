"""The outputter of ``salt-run kubesalt_certs.expiry``: the report as one table, the way
``kubeadm certs check-expiration`` prints it. The runner names it in its return
(``{"data": ..., "outputter": "kubesalt_certs"}``); ``--out=json`` prints the same data
as JSON instead (docs/pki.md#the-expiry-report).
"""

import salt.output

try:
    from kubesalt import certreport as _report

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the master's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_certs"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def output(data, **kwargs):  # pylint: disable=unused-argument
    """The report as text; anything else (an error return) as Salt's nested output."""
    if isinstance(data, dict) and "certificates" in data and "cas" in data:
        return _report.table(data)
    return salt.output.out_format(data, "nested", __opts__)  # noqa: F821
