"""`register(ml_app)`: the train → evaluate → package commands on a table file, end to end."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from tests.ml.synthetic import make_table
from wayline_cli.ml_train import register
from wayline_ml.registry import DirectoryRegistry
from wayline_ml.table_io import write_table


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
