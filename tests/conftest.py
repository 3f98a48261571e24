"""Shared pytest setup: real servers come from the fixture plugins below, started once per session."""

pytest_plugins = ["tests.fixtures.databases", "tests.fixtures.objectstores", "tests.e2e.operator_env"]
