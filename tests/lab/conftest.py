"""The lab tests use the session-wide `lab` fixture of tests/conftest.py."""
