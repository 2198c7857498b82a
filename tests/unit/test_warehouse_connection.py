"""How processes connect to the warehouse: parameters per environment, and a clear error when it is down."""

from __future__ import annotations

import time

import pytest

from shared.settings import Settings
from shared.warehouse import WarehouseUnavailable, connect, connection_parameters, query
from tests.conftest import free_port


def test_locally_the_connection_fails_fast_and_sends_no_telemetry():
    # GIVEN local settings
    settings = Settings(warehouse_port=18090, warehouse_database="MOVIES")

    # WHEN the connector's parameters are built
    parameters = connection_parameters(settings)

    # THEN they point at the stand-in over http, with short timeouts and telemetry off
    assert (parameters["host"], parameters["port"], parameters["protocol"]) == ("127.0.0.1", 18090, "http")
    assert parameters["database"] == "MOVIES"
    assert parameters["session_parameters"] == {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False}
    assert parameters["login_timeout"] <= 10 and parameters["network_timeout"] <= 5


def test_in_aws_the_connector_keeps_its_own_retries_and_uses_role_and_warehouse():
    # GIVEN production settings
    settings = Settings(
        environment="aws",
        api_token="t",
        warehouse_host="acme.snowflakecomputing.com",
        warehouse_port=443,
        warehouse_protocol="https",
        warehouse_password="s3cret",
        warehouse_role="LOADER",
        warehouse_name="LOAD_WH",
    )

    # WHEN the connector's parameters are built
    parameters = connection_parameters(settings)

    # THEN Snowflake's role and virtual warehouse are named, and no local timeouts apply
    assert parameters["role"] == "LOADER" and parameters["warehouse"] == "LOAD_WH"
    assert "network_timeout" not in parameters and "session_parameters" not in parameters


def test_a_warehouse_that_is_down_fails_fast_naming_where_it_was_looked_for():
    # GIVEN nothing listening where the warehouse should be
    port = free_port()
    settings = Settings(warehouse_port=port, warehouse_password="do-not-print-me")

    # WHEN a process connects
    started = time.monotonic()
    with pytest.raises(WarehouseUnavailable) as raised, connect(settings):
        pass

    # THEN it is told at once, with the address and without the password
    assert time.monotonic() - started < 15
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert "do-not-print-me" not in str(raised.value)


def test_query_reports_a_down_warehouse_the_same_way():
    # GIVEN nothing listening
    settings = Settings(warehouse_port=free_port())

    # WHEN the CLI queries it
    # THEN the typed error says the warehouse did not answer
    with pytest.raises(WarehouseUnavailable, match="did not answer"):
        query(settings, "SELECT 1")
