"""kubesalt.mine: one mine request per Salt job, shared by every kubesalt module."""

from unittest.mock import Mock

import pytest

from kubesalt import mine

ANSWER = {
    "control_plane_ip": {"boot": "198.51.100.10", "cp2": "198.51.100.11"},
    "workload_plane_ip": {"boot": "198.51.100.10"},
    "kubesalt_ca": {"boot": "PEM"},
}


def test_the_functions_are_the_ones_the_nodes_and_the_ca_minion_publish():
    assert mine.FUNCTIONS == (
        "control_plane_ip",
        "workload_plane_ip",
        "kubesalt_ca",
        "kubesalt_etcd_ca",
        "kubesalt_front_proxy_ca",
        "kubesalt_sa_pub",
    )


def test_one_request_per_job_for_every_function():
    mine_get = Mock(return_value=ANSWER)
    context = {}
    assert mine.published(mine_get, context, "control_plane_ip") == ANSWER["control_plane_ip"]
    assert mine.published(mine_get, context, "kubesalt_ca") == {"boot": "PEM"}
    assert mine.published(mine_get, context, "kubesalt_sa_pub") == {}  # not published yet
    assert [c.args for c in mine_get.call_args_list] == [("*", list(mine.FUNCTIONS))]
    mine.published(mine_get, {}, "control_plane_ip")  # another job asks again
    assert mine_get.call_count == 2


def test_callers_get_a_copy():
    context = {}
    ips = mine.published(Mock(return_value=ANSWER), context, "control_plane_ip")
    ips["cp3"] = "198.51.100.12"
    assert "cp3" not in mine.published(Mock(), context, "control_plane_ip")


def test_an_empty_answer_is_no_entry():
    assert mine.published(Mock(return_value=None), {}, "workload_plane_ip") == {}


def test_an_unknown_function_is_refused():
    with pytest.raises(ValueError, match="mine function 'grains.items' is not kubesalt's"):
        mine.published(Mock(), {}, "grains.items")
