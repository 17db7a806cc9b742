"""tests/conftest.py: the test session's own settings."""

import logging

import salt._logging
from salt._logging.handlers import DeferredStreamHandler


def test_salt_temp_log_handler_is_gone_before_the_tests():
    # Left in place, it writes every buffered warning at exit to pytest's closed capture file:
    # one "--- Logging error ---" per record after pytest's summary.
    assert salt._logging.get_temp_handler() is None
    assert not [h for h in logging.root.handlers if isinstance(h, DeferredStreamHandler)]
