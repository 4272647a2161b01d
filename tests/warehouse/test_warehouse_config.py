"""``integration: warehouse`` configuration: validation, and that Snowflake, BigQuery and Redshift
settings reach dlt as configured (credentials from sluice.yaml or dlt's environment variables),
checked without any network access."""

from __future__ import annotations

import pytest

from pipeline.app import load_connectors
from pipeline.config import ConfigError, Destination, parse_config
from pipeline.processor.routing import integration_enabled
from pipeline.warehouse.config import warehouse_names, warehouse_settings
from pipeline.warehouse.destination import resolve


def dest(**config) -> Destination:
    return Destination(name="wh", integration="warehouse", config=config)


def sluice_yaml(config: dict) -> dict:
    return {
        "sources": [{"name": "web", "write_key": "k"}],
        "destinations": [{"name": "wh", "integration": "warehouse", "config": config}],
        "connections": [{"source": "web", "destinations": ["wh"]}],
    }


def test_snowflake_credentials_from_sluice_yaml_reach_dlt(monkeypatch):
    monkeypatch.setenv("SF_PASSWORD", "s3cret-pass")
    cfg = parse_config(
        sluice_yaml(
            {
                "provider": "snowflake",
                "dataset": "events",
                "credentials": "snowflake://loader:${SF_PASSWORD}@kgiotue-wn98412/ANALYTICS?warehouse=LOADING&role=LOADER",
            }
        )
    )
    d = cfg.destinations[0]
    resolved = resolve(warehouse_settings(d), d.name)
    c = resolved.credentials
    assert (c.host, c.username, c.password, c.database) == (
        "kgiotue-wn98412",
        "loader",
        "s3cret-pass",
        "ANALYTICS",
    )
    assert (c.warehouse, c.role) == ("LOADING", "LOADER")
    assert resolved.dataset_name == "events"


def test_bigquery_credentials_from_dlt_environment_variables(monkeypatch):
    monkeypatch.setenv("DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID", "acme-analytics")
    monkeypatch.setenv(
        "DESTINATION__BIGQUERY__CREDENTIALS__CLIENT_EMAIL", "loader@acme-analytics.iam.gserviceaccount.com"
    )
    monkeypatch.setenv(
        "DESTINATION__BIGQUERY__CREDENTIALS__PRIVATE_KEY",
        "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
    )
    settings = warehouse_settings(dest(provider="bigquery", dlt_options={"location": "EU"}))
    resolved = resolve(settings, "wh")
    assert resolved.credentials.project_id == "acme-analytics" and resolved.location == "EU"
    assert resolved.dataset_name == "wh"
    assert settings.row_provider() == "bq"


def test_redshift_credentials_and_row_model(monkeypatch):
    url = "redshift://loader:pw-12345@examplecluster.abc123.us-west-2.redshift.amazonaws.com:5439/dev"
    settings = warehouse_settings(dest(provider="redshift", credentials=url, dataset="analytics"))
    c = resolve(settings, "wh").credentials
    assert (c.host, c.port, c.database, c.username) == (
        "examplecluster.abc123.us-west-2.redshift.amazonaws.com",
        5439,
        "dev",
        "loader",
    )
    assert settings.row_provider() == "rs"


def test_missing_credentials_fail_at_startup_with_the_fix_and_no_secret(monkeypatch):
    monkeypatch.delenv("DESTINATION__POSTGRES__CREDENTIALS", raising=False)
    with pytest.raises(ConfigError) as e:
        load_connectors(parse_config(sluice_yaml({"provider": "postgres"})))
    assert "DESTINATION__POSTGRES__CREDENTIALS" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_connectors(
            parse_config(
                sluice_yaml({"provider": "snowflake", "credentials": "snowflake://u:topsecret1@acct"})
            )
        )
    assert "topsecret1" not in str(e.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "provider: required"),
        ({"provider": "oracle"}, "provider"),
        ({"provider": "duckdb", "sync_evry": 5}, "sync_evry: unknown key"),
        ({"provider": "duckdb", "max_events": 0}, "max_events"),
        ({"provider": "duckdb", "path": "./wh.duckdb"}, "DuckDB cannot tell apart"),
    ],
)
def test_invalid_settings_name_the_key(config, message):
    with pytest.raises(ConfigError, match=message):
        warehouse_settings(dest(**config), "destinations[0]")


def test_lake_naming_follows_the_bucket():
    assert (
        warehouse_settings(dest(provider="filesystem", bucket_url="gs://b/x")).row_provider()
        == "gcs_datalake"
    )
    assert (
        warehouse_settings(dest(provider="filesystem", bucket_url="az://c/x")).row_provider()
        == "azure_datalake"
    )
    assert (
        warehouse_settings(dest(provider="filesystem", bucket_url="/data/lake")).row_provider()
        == "s3_datalake"
    )


def test_events_address_a_warehouse_by_its_key_name_or_data_warehouse():
    names = warehouse_names(dest(provider="postgres", credentials="postgresql://u:p@h/db"))
    assert integration_enabled({"All": False, "POSTGRES": {"options": {"jsonPaths": []}}}, names)
    assert integration_enabled({"All": False, "wh": True}, names)
    assert integration_enabled({"All": False, "DATA_WAREHOUSE": True}, names)
    assert not integration_enabled({"All": True, "Postgres": False}, names)
    assert not integration_enabled({"All": False, "RS": True}, names)
