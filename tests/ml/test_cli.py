"""`register(ml_app)`: the train → evaluate → package commands on a table file, end to end."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from tests.conftest import API_KEY
from tests.ml.synthetic import make_table
from wayline.common.server import Server
from wayline_cli.ml import ml_app
from wayline_cli.ml_train import register
from wayline_ml.registry import DirectoryRegistry
from wayline_ml.table_io import read_table, write_table


def test_train_evaluate_package_from_a_parquet_table(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    write_table(make_table(4000, seed=5), tmp_path / "table.parquet")
    runner = CliRunner()
    run = ["--run", str(tmp_path / "run")]
    trained = runner.invoke(app, ["train", str(tmp_path / "table.parquet"), *run, "--max-rounds", "60"])
    assert trained.exit_code == 0, trained.output
    evaluated = runner.invoke(app, ["evaluate", str(tmp_path / "table.parquet"), *run])
    assert evaluated.exit_code == 0, evaluated.output
    assert (tmp_path / "run" / "model_card.md").is_file()
    args = ["package", str(tmp_path / "table.parquet"), *run, "--registry", str(tmp_path / "models")]
    args += ["--tenant", "acme", "--name", "nba", "--version", "2"]
    packaged = runner.invoke(app, args)
    assert packaged.exit_code == 0, packaged.output
    assert DirectoryRegistry(tmp_path / "models").versions("acme", "nba") == ["2"]
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "packages are immutable" in again.output


@pytest.mark.slow
def test_generate_sends_and_export_reads_the_decisions_back(gateway_server: Server, tmp_path: Path) -> None:
    """`wayline ml generate --gateway` then `wayline ml export`: every logged decision comes back from the
    store as a training-table row with the spec's features; a broken spec file is a usage error."""
    namespace = f"e{uuid.uuid4().hex[:8]}"
    start = (datetime.now(UTC) - timedelta(days=32)).strftime("%Y-%m-%d")
    runner = CliRunner()
    common = ["--gateway", gateway_server.address, "--api-key", API_KEY]
    generated = runner.invoke(
        ml_app,
        ["generate", "--people", "120", "--days", "30", "--seed", "9", "--start", start,
         "--namespace", namespace, "--out", str(tmp_path / "gen"), *common],
    )  # fmt: skip
    assert generated.exit_code == 0, generated.output
    decisions = pq.read_table(tmp_path / "gen" / "decisions.parquet").num_rows
    assert decisions > 20
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: tiny\nversion: '1'\nfeatures:\n"
        "  - {name: orders, aggregation: FEATURE_AGGREGATION_COUNT, events: {eventName: Order Completed},"
        " defaultValue: 0, valueType: FEATURE_VALUE_TYPE_INT}\n"
    )
    table_file = tmp_path / "table.parquet"
    deadline = time.monotonic() + 60
    while True:  # ingest delivers to journeys asynchronously
        exported = runner.invoke(ml_app, ["export", str(table_file), "--spec", str(spec), *common])
        assert exported.exit_code == 0, exported.output
        table = read_table(table_file)
        if len(table) >= decisions or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert table.schema.names == ("orders",)
    assert len(table) >= decisions  # other tests may have logged decisions in this tenant too
    assert "Training table: tiny 1" in exported.output
    last_value = "{name: last, aggregation: FEATURE_AGGREGATION_LAST_VALUE, property: properties.x}"
    spec.write_text(f"name: tiny\nversion: '1'\nfeatures:\n  - {last_value}\n")  # no value type
    refused = runner.invoke(ml_app, ["export", str(table_file), "--spec", str(spec), *common])
    assert refused.exit_code != 0
    assert "features[0].value_type: required for FEATURE_AGGREGATION_LAST_VALUE" in refused.output
