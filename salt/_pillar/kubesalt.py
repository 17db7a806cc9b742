"""ext_pillar `kubesalt`: the validated bootstrap.yaml, under the pillar key `kubesalt`.

Master (or masterless minion) configuration::

    ext_pillar:
      - kubesalt:
          config: /etc/kubesalt/bootstrap.yaml

An invalid file does not give a partial pillar: the pillar gets `_errors`, one entry per
problem, and Salt refuses to apply any state while they are there, printing them.
"""

import logging

try:
    from kubesalt import config as _config

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the master's virtualenv
    HAS_KUBESALT = False

log = logging.getLogger(__name__)

__virtualname__ = "kubesalt"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def ext_pillar(minion_id, pillar, config="/etc/kubesalt/bootstrap.yaml"):  # pylint: disable=unused-argument
    """Return {'kubesalt': <normalized configuration>} or {'_errors': [...]}."""
    try:
        cfg = _config.load_file(config)
    except _config.InvalidConfig as err:
        log.info("kubesalt ext_pillar: %s", err)
        header = f"kubesalt: {err.source} is not valid ({len(err.problems)} problem(s)); fix it, then run again:"
        return {"_errors": [header] + [str(problem) for problem in err.problems]}
    return {"kubesalt": cfg}
