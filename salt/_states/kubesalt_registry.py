"""State: the registry holds every image of an OCI image layout, with the same digests.

Diffs by digest (``kubesalt_bootstrap.load_images`` with ``dry_run``) and pushes only the
images that are missing or differ.
"""

from salt.exceptions import CommandExecutionError

__virtualname__ = "kubesalt_registry"


def __virtual__():
    if "kubesalt_bootstrap.load_images" not in __salt__:  # noqa: F821
        return (False, "the kubesalt_bootstrap execution module is not available")
    return __virtualname__


def images_present(name, registry=None):
    """
    Make the registry hold every image of the OCI layout ``name`` under its tag.

    name
        The OCI image layout directory (an archive's ``images/``).
    registry
        Push straight to this registry's base URL (default: through the fill instance of
        the read-only registry on 127.0.0.1:5000, see ``kubesalt_bootstrap.load_images``).
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    load = __salt__["kubesalt_bootstrap.load_images"]  # noqa: F821
    try:
        planned = load(name, registry=registry, dry_run=True)
        if not planned["pushed"]:
            ret["result"] = True
            ret["comment"] = f"The registry holds the {len(planned['present'])} images of {name}"
            return ret
        if __opts__["test"]:  # noqa: F821
            ret["result"] = None
            ret["comment"] = f"Would have pushed {len(planned['pushed'])} images of {name}"
            ret["changes"] = {"pushed": planned["pushed"]}
            return ret
        done = load(name, registry=registry)
    except CommandExecutionError as err:
        ret["comment"] = str(err)
        return ret
    ret["result"] = True
    ret["changes"] = {"pushed": done["pushed"]}
    ret["comment"] = (
        f"Pushed {len(done['pushed'])} images of {name} "
        f"({done['blobs_pushed']} blobs, {done['bytes_pushed']} bytes); "
        f"{len(done['present'])} were already there"
    )
    return ret
