"""The report reads a central table the real correlator filled (moto)."""

from tests.correlator.conftest import aws, central  # noqa: F401 - fixtures
