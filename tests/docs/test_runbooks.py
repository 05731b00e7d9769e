"""The runbooks in docs/runbooks say only what is true of this release: every `wayline ...` command line
parses with the real CLI (its subcommands exist, each `--flag` is one of that command's options, the
positional arguments fit), every `WAYLINE_*` name is a setting a service (or the CLI) reads, every metric
named is one the code records, every runbook has the five parts an operator looks for, and the index lists
them all."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from tools.service_settings import settings_classes
from wayline.common.settings import ServiceSettings
from wayline_cli.main import app

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks"
PAGES = sorted(RUNBOOKS.glob("*.md"))
# Reference pages written before the runbook format (what to look at, not a procedure).
REFERENCE_PAGES = {"README.md", "ingest-spool.md", "operating-a-service.md"}
SECTIONS = ("## When", "## Before", "## Steps", "## Verify", "## Roll back")
_SHELL_BREAKS = {">", ">>", "2>", "|", "||", "&&", ";", "&"}

CLI = typer.main.get_command(app)


def _fenced_lines(text: str) -> Iterator[str]:
    """The lines of the fenced code blocks, continuation lines (`\\`) joined."""
    inside, pending = False, ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            inside, pending = not inside, ""
            continue
        if inside:
            pending += line.rstrip()
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            yield pending
            pending = ""


def command_lines(text: str) -> list[tuple[str, bool]]:
    """Every `wayline ...` command of a page, and whether it is one to run: the lines of code blocks that
    start with it, and inline code (which may also just name a command: `wayline store export`)."""
    found = [(line.strip(), True) for line in _fenced_lines(text) if line.strip().startswith("wayline ")]
    found += [(" ".join(span.split()), False) for span in re.findall(r"`(wayline [^`]+)`", text)]
    return found


def _tokens(line: str) -> list[str]:
    tokens = []
    for token in shlex.split(line, comments=True):
        if token in _SHELL_BREAKS:
            break
        tokens.append(token)
    return tokens


def problems_of(line: str, *, run: bool = True) -> list[str]:
    """What does not parse in one command line (empty when it does); a command only named (`run` false, and
    nothing after its name) needs no arguments."""
    tokens = _tokens(line)[1:]
    command = CLI
    path = ["wayline"]
    while hasattr(command, "commands") and tokens and not tokens[0].startswith("-"):
        names = tokens[0].split("|")  # `wayline store export|import` names both
        if any(name not in command.commands for name in names):
            return [f"{' '.join(path)} has no subcommand {tokens[0]!r}"]
        command = command.commands[names[0]]
        path.append(tokens.pop(0))
    if hasattr(command, "commands"):  # a group named in prose, e.g. `wayline models`
        return [] if not tokens else [f"{' '.join(path)} is a group; it takes no {tokens[0]!r}"]
    options = {
        name: param
        for param in command.params
        if param.param_type_name == "option"
        for name in (*param.opts, *param.secondary_opts)
    }
    arguments = [param for param in command.params if param.param_type_name == "argument"]
    if not run and not tokens:
        return []
    positional, problems = [], []
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--"):
            positional.append(token)
            continue
        name, has_value, _ = token.partition("=")
        if name == "--help":
            continue
        if name not in options:
            problems.append(f"{' '.join(path)} has no option {name}")
        elif not getattr(options[name], "is_flag", False) and not has_value:
            if not tokens:
                problems.append(f"{' '.join(path)} {name} needs a value")
            else:
                tokens.pop(0)
    required = sum(1 for argument in arguments if argument.required)
    if not required <= len(positional) <= len(arguments):
        problems.append(
            f"{' '.join(path)} takes {required} to {len(arguments)} arguments, the runbook gives {positional}"
        )
    return problems


def setting_names() -> set[str]:
    names = {name for names in ServiceSettings.environment_variables().values() for name in names}
    for settings in settings_classes().values():
        names |= {name for variables in settings.environment_variables().values() for name in variables}

    def envvars(command: object) -> Iterator[str]:
        for sub in getattr(command, "commands", {}).values():
            yield from envvars(sub)
        for param in getattr(command, "params", []):
            envvar = getattr(param, "envvar", None)
            yield from [envvar] if isinstance(envvar, str) else (envvar or [])

    return names | set(envvars(CLI))  # the CLI's own, such as WAYLINE_API_KEY


_METRIC = re.compile(
    r"\b((?:rpc|http|ingest|identity|journeys|decision|orchestrator|gateway|wayline)_[a-z0-9_]+?)"
    r"(?:_(?:milliseconds|seconds|bytes))?_(?:total|bucket|count|sum)\b"
    r"|\b((?:rpc|http|ingest|identity|journeys|decision|orchestrator|gateway|wayline)_[a-z0-9_]+?)"
    r"_(?:milliseconds|seconds|bytes)\b"
)


def instrument_names() -> set[str]:
    """The OpenTelemetry instruments the services create, as Prometheus spells them (dots as underscores,
    without the unit and `_total` suffixes the exporter adds): every dotted string literal of a module
    that creates instruments (names are sometimes constants)."""
    found = set()
    for path in (ROOT / "services").glob("*/src/**/*.py"):
        text = path.read_text()
        if re.search(r"\.create_(counter|histogram|up_down_counter|gauge|observable_\w+)\(", text):
            found |= {
                name.replace(".", "_") for name in re.findall(r'"([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)"', text)
            }
    return found


def test_the_index_lists_every_runbook_and_is_linked() -> None:
    index = (RUNBOOKS / "README.md").read_text()
    linked = set(re.findall(r"\]\(([a-z0-9-]+\.md)\)", index))
    assert linked == {page.name for page in PAGES} - {"README.md"}
    for readme in (ROOT / "README.md", ROOT / "deploy" / "README.md"):
        assert "runbooks/README.md" in readme.read_text(), readme


@pytest.mark.parametrize("page", [p for p in PAGES if p.name not in REFERENCE_PAGES], ids=lambda p: p.name)
def test_each_runbook_says_when_before_steps_verify_and_roll_back(page: Path) -> None:
    text = page.read_text()
    positions = [text.find(section) for section in SECTIONS]
    missing = [section for section, at in zip(SECTIONS, positions, strict=True) if at < 0]
    assert not missing, f"{page.name} lacks {missing}"
    assert positions == sorted(positions), f"{page.name}: sections out of order"


def test_every_wayline_command_parses_with_the_real_cli() -> None:
    checked = 0
    problems = []
    for page in PAGES:
        for line, run in command_lines(page.read_text()):
            problems += [f"{page.name}: {line}: {problem}" for problem in problems_of(line, run=run)]
            checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 20  # the runbooks are mostly commands; a parser that finds none checks nothing


def test_the_checker_refuses_what_the_cli_would() -> None:
    assert problems_of("wayline models deploy nbo 1.0 --canary 5 --api-key k") == []
    assert problems_of("wayline keys rotate acme k1 --overlap-hours 2 --api-key k > new.txt") == []
    assert problems_of("wayline store export|import", run=False) == []
    assert problems_of("wayline store export", run=True) != []  # a command to run needs its directory
    assert "wayline models deploy has no option --percent" in problems_of(
        "wayline models deploy nbo 1.0 --percent 5"
    )
    assert problems_of("wayline models promote nbo") == ["wayline models has no subcommand 'promote'"]
    assert problems_of("wayline keys rotate acme") != []  # key_id missing
    assert problems_of("wayline store import ./d --resume extra") != []


def test_every_wayline_variable_is_a_setting() -> None:
    known = setting_names()
    unknown = {
        f"{page.name}: {name}"
        for page in PAGES
        for name in re.findall(r"WAYLINE_(?:[A-Z0-9_]|<[A-Z]+>)+", page.read_text())
        if "<" not in name and not name.endswith("_") and name not in known
    }
    assert not unknown, sorted(unknown)
    assert "WAYLINE_INGEST_SPOOL_MAX_BYTES" in known  # the check reads the real settings


def test_every_metric_named_is_recorded_by_the_code() -> None:
    recorded = instrument_names()
    assert "rpc_server_requests" in recorded  # the scan finds the instruments
    named = {
        f"{page.name}: {match.group(0)}": match.group(1) or match.group(2)
        for page in PAGES
        for match in _METRIC.finditer(page.read_text())
    }
    assert named, "the runbooks name no metric: the pattern is broken"
    missing = sorted(where for where, name in named.items() if name not in recorded)
    assert not missing, missing
