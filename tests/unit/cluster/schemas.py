"""Strict checks of rendered API objects against Kubernetes' OpenAPI schemas
(kubernetes-validate), for every test of kubesalt.cluster."""

import kubernetes_validate

KUBERNETES = "1.33"


def describe(obj: dict) -> str:
    """`Kind namespace/name` of an object, for messages."""
    meta = obj.get("metadata") or {}
    name = "/".join(part for part in (meta.get("namespace"), meta.get("name")) if part)
    return f"{obj.get('kind', '(no kind)')} {name or '(no name)'}"


def validate(obj: dict, version: str = KUBERNETES) -> None:
    """Check `obj` against the schema of Kubernetes `version`, refusing unknown fields.

    Fails with an AssertionError naming the object, the field path and the problem; an
    apiVersion/kind without a schema in that version fails too (a typo, or an API the
    version does not serve).
    """
    try:
        checked = kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(part) for part in err.path) or "(the object)"
        raise AssertionError(
            f"{describe(obj)}: {path}: {err.message} (Kubernetes {version} schema)"
        ) from None
    except kubernetes_validate.SchemaNotFoundError:
        raise AssertionError(
            f"{describe(obj)}: Kubernetes {version} has no schema for apiVersion "
            f"{obj.get('apiVersion')!r}, kind {obj.get('kind')!r}"
        ) from None
    # kubernetes-validate falls back to an older schema set when it lacks the one asked for.
    assert checked == version, f"validated against Kubernetes {checked}, not {version}"
