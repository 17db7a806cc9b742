"""When a certificate is renewed: the configured window, the per-run override the
renew_certificates orchestration hands to the states, and the window arithmetic
(docs/pki.md#renewal).

- `renew_before_days(cfg)`: pki.renewBeforeDays, or its default;
- `Override`: pillar `kubesalt_renew` (set only by renew_certificates): another window
  for this run, `force`, and `issued_before`, the run's start, so that a certificate
  issued by this run is never due again within it (the role states the run applies
  include kubesalt.pki again);
- `effective_days(...)`: the `days_remaining` one certificate state uses;
- `due(...)` and `ca_warning(...)`: what the expiry report flags.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from kubesalt.errors import KubesaltError
from kubesalt.signing_policies import days_remaining as default_window

PILLAR_KEY = "kubesalt_renew"
# days_remaining that makes x509_v2 (and the local check) renew any certificate: beyond
# the longest validity bootstrap.yaml accepts.
FORCE_DAYS = 100_000
MAX_WINDOW_DAYS = 36_500
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class RenewalError(KubesaltError):
    """A renewal option or record is invalid; the message names it and the fix."""


def renew_before_days(cfg: dict) -> int:
    """pki.renewBeforeDays, or by default 90 days (a quarter of
    pki.certificateValidityDays when that is shorter)."""
    pki = cfg["pki"]
    given = pki.get("renewBeforeDays")
    if given is not None:
        return int(given)
    return default_window(int(pki["certificateValidityDays"]))


def ca_warning_days(cfg: dict) -> int:
    """A CA is in its window once a leaf issued now (pki.certificateValidityDays) would
    outlive it: from then on, rotate it (docs/pki.md#rotating-a-ca)."""
    return int(cfg["pki"]["certificateValidityDays"])


def timestamp(moment: datetime.datetime) -> str:
    """`2025-06-01T12:00:00Z`: UTC, whole seconds (certificate dates have no fraction)."""
    return moment.astimezone(datetime.UTC).strftime(TIME_FORMAT)


def parse_timestamp(text: str, what: str) -> datetime.datetime:
    try:
        return datetime.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=datetime.UTC)
    except (TypeError, ValueError):
        raise RenewalError(f"{what} = {text!r}: give a UTC time as YYYY-MM-DDTHH:MM:SSZ") from None


@dataclass(frozen=True)
class Override:
    """One run's renewal: `window_days` replaces the configured window (None: keep it),
    `force` renews every certificate not issued by this run, `issued_before` is the
    run's start (certificates issued at or after it are this run's own)."""

    window_days: int | None = None
    force: bool = False
    issued_before: str | None = None

    def as_pillar(self) -> dict:
        return {"window_days": self.window_days, "force": self.force,
                "issued_before": self.issued_before}  # fmt: skip

    @classmethod
    def from_pillar(cls, value) -> Override | None:
        """The pillar `kubesalt_renew` as given by the orchestration; None when absent."""
        if value in (None, {}):
            return None
        if not isinstance(value, dict):
            raise RenewalError(f"pillar {PILLAR_KEY} = {value!r}: give a mapping")
        window = value.get("window_days")
        if window is not None:
            window = check_window(window, f"pillar {PILLAR_KEY}:window_days")
        force = value.get("force", False)
        if not isinstance(force, bool):
            raise RenewalError(f"pillar {PILLAR_KEY}:force = {force!r}: give true or false")
        issued_before = value.get("issued_before")
        if issued_before is not None:
            parse_timestamp(issued_before, f"pillar {PILLAR_KEY}:issued_before")
        return cls(window, force, issued_before)


def check_window(value, what: str) -> int:
    """A window in days: a whole number from 1 to MAX_WINDOW_DAYS."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WINDOW_DAYS:
        raise RenewalError(
            f"{what} = {value!r}: give a whole number of days from 1 to {MAX_WINDOW_DAYS}, "
            "for example 400 to renew every certificate of a one-year validity"
        )
    return value


def effective_days(configured: int, override: Override | None,
                   not_before: datetime.datetime | None) -> int:  # fmt: skip
    """The `days_remaining` of one certificate state: the configured window, or the
    run's; 0 for a certificate this run issued (due for no expiry reason again); and
    FORCE_DAYS under `force` (due now, for the local check and for x509_v2 alike).
    `not_before`: the certificate's, None when there is none yet."""
    if override is None:
        return configured
    if override.issued_before and not_before is not None:
        start = parse_timestamp(override.issued_before, f"pillar {PILLAR_KEY}:issued_before")
        if not_before >= start:
            return 0
    if override.force:
        return FORCE_DAYS
    return override.window_days if override.window_days is not None else configured


def days_left(not_after: datetime.datetime, now: datetime.datetime) -> int:
    """Whole days until `not_after` (negative once expired), as kubeadm counts them."""
    return (not_after - now) // datetime.timedelta(days=1)


def due(not_after: datetime.datetime, now: datetime.datetime, window_days: int) -> bool:
    """Whether a leaf is renewed by the next run: it expires within the window (the rule
    of pkicheck.check_certificate and x509_v2)."""
    return not_after < now + datetime.timedelta(days=window_days)


def ca_warning(not_after: datetime.datetime, now: datetime.datetime, cfg: dict) -> bool:
    """Whether a CA is within its window (ca_warning_days)."""
    return due(not_after, now, ca_warning_days(cfg))


def issued_at(path: str) -> datetime.datetime | None:
    """The notBefore of the PEM certificate at `path`; None when there is no readable one
    (the certificate check then says why)."""
    from cryptography import x509  # here: the config package must import without it

    try:
        with open(path, "rb") as stream:
            return x509.load_pem_x509_certificate(stream.read()).not_valid_before_utc
    except (OSError, ValueError):
        return None
