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


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-rounds", "0", "--max-rounds"),  # XGBoost had no best iteration: AttributeError
        ("--max-depth", "99999999999999999999", "--max-depth"),
        ("--learning-rate", "nan", "--learning-rate"),  # XGBoost trained on it
        ("--learning-rate", "5", "--learning-rate"),
        ("--nthread", "99999999999999999999", "--nthread"),
        ("--seed", "99999999999999999999", "--seed"),
        ("--holdout-fraction", "0", "strictly between 0 and 1"),  # an IndexError
        ("--holdout-fraction", "nan", "strictly between 0 and 1"),
    ],
)
def test_train_refuses_settings_xgboost_cannot_take_as_usage_errors(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    app = typer.Typer()
    register(app)
    write_table(make_table(400, seed=1), tmp_path / "table.parquet")
    result = CliRunner().invoke(
        app,
        ["train", str(tmp_path / "table.parquet"), "--run", str(tmp_path / "run"), option, value],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "run").exists()


def test_a_run_directory_that_is_a_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    write_table(make_table(2000, seed=5), tmp_path / "table.parquet")
    taken = tmp_path / "taken"
    taken.write_text("not a directory")
    result = CliRunner().invoke(
        app,
        ["train", str(tmp_path / "table.parquet"), "--run", str(taken), "--max-rounds", "5"],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"error: File exists: {taken}" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--people", "99999999999999999999"], "--people"),  # OverflowError in numpy
        (["--days", "1e999"], "--days"),  # OverflowError: infinity
        (["--seed", "-1"], "--seed"),  # numpy's SeedSequence: ValueError
    ],
)
def test_generate_refuses_numbers_it_cannot_use(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(
        ml_app, ["generate", "--out", str(tmp_path / "gen"), *args]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "gen").exists()


def test_generate_writes_into_a_directory_whose_name_has_a_colon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pyarrow read the relative path `x:y/events.parquet` as a URI of scheme `x` (ArrowInvalid).
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(ml_app, ["generate", "--people", "5", "--days", "2", "--out", "x:y"])
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "x:y" / "events.parquet").num_rows > 0


def test_generate_and_export_refuse_paths_they_cannot_use_before_working(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    runner = CliRunner(env={"COLUMNS": "250"})
    generated = runner.invoke(ml_app, ["generate", "--people", "5", "--out", str(a_file)])
    assert generated.exit_code == 2, generated.output
    assert "cannot write" in generated.output
    key = ["--api-key", API_KEY, "--gateway", "127.0.0.1:1"]  # never reached
    csv = runner.invoke(ml_app, ["export", str(tmp_path / "table.csv"), *key])
    assert csv.exit_code == 2, csv.output
    assert "a training table is a .npz or .parquet file" in csv.output
    spec_dir = runner.invoke(ml_app, ["export", str(tmp_path / "t.parquet"), "--spec", str(tmp_path), *key])
    assert spec_dir.exit_code == 2, spec_dir.output  # IsADirectoryError before
    assert "is a directory" in spec_dir.output
