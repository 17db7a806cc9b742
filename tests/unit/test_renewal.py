"""The renewal window (pki.renewBeforeDays), a run's override, the window arithmetic
(the certificate state under a renewal run: test_kubesalt_pki_states.py)."""

import datetime

import pytest

from kubesalt import config, renewal
from kubesalt.renewal import Override
from tests.unit.test_config import changed

DAY = datetime.timedelta(days=1)
START = datetime.datetime(2026, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)


def pki(**given):
    return {"pki": {"certificateValidityDays": 365, "renewBeforeDays": None, **given}}


@pytest.mark.parametrize(
    ("given", "days"),
    [({}, 90), ({"renewBeforeDays": 30}, 30), ({"certificateValidityDays": 60}, 15),
     ({"certificateValidityDays": 60, "renewBeforeDays": 59}, 59)],
)  # fmt: skip
def test_the_window_is_the_configured_one_else_90_days_or_a_quarter(given, days):
    assert renewal.renew_before_days(pki(**given)) == days


def test_the_configured_window_reaches_the_validated_configuration():
    cfg, problems = config.validate(changed(pki={"renewBeforeDays": 45}))
    assert problems == [] and renewal.renew_before_days(cfg) == 45


def test_a_leaf_near_its_end_is_due_and_not_before():
    not_after = START + 89 * DAY
    assert renewal.due(not_after, START, 90) is True
    assert renewal.due(START + 90 * DAY, START, 90) is False
    assert renewal.days_left(not_after, START) == 89
    assert renewal.days_left(START - DAY / 2, START) == -1


def test_a_ca_warns_once_a_new_leaf_would_outlive_it():
    cfg = pki()
    assert renewal.ca_warning(START + 364 * DAY, START, cfg) is True
    assert renewal.ca_warning(START + 366 * DAY, START, cfg) is False


def test_without_an_override_the_configured_window_holds():
    assert renewal.effective_days(90, None, START) == 90


def test_a_run_window_replaces_the_configured_one_for_certificates_issued_before_the_run():
    run = Override(400, False, renewal.timestamp(START))
    assert renewal.effective_days(90, run, START - DAY) == 400
    assert renewal.effective_days(90, run, None) == 400  # no certificate yet


def test_a_certificate_issued_by_the_run_is_never_due_again_within_it():
    run = Override(400, True, renewal.timestamp(START))
    assert renewal.effective_days(90, run, START) == 0
    assert renewal.effective_days(90, run, START + datetime.timedelta(seconds=5)) == 0


def test_force_renews_every_certificate_issued_before_the_run():
    run = Override(None, True, renewal.timestamp(START))
    assert renewal.effective_days(90, run, START - datetime.timedelta(seconds=1)) == (
        renewal.FORCE_DAYS
    )


def test_the_override_travels_as_pillar_and_back():
    run = Override(400, True, "2026-06-01T12:00:00Z")
    assert run.as_pillar() == {"window_days": 400, "force": True,
                               "issued_before": "2026-06-01T12:00:00Z"}  # fmt: skip
    assert Override.from_pillar(run.as_pillar()) == run
    assert Override.from_pillar(None) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", r"pillar kubesalt_renew = 'soon': give a mapping"),
        ({"window_days": 0}, r"kubesalt_renew:window_days = 0: give a whole number of days"),
        ({"window_days": True}, r"kubesalt_renew:window_days = True: give a whole number"),
        ({"force": "yes"}, r"kubesalt_renew:force = 'yes': give true or false"),
        ({"issued_before": "today"}, r"kubesalt_renew:issued_before = 'today': give a UTC"),
    ],
)
def test_a_bad_override_names_its_key(value, message):
    with pytest.raises(renewal.RenewalError, match=message):
        Override.from_pillar(value)
