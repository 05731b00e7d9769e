"""A service's process kept on the CPUs its settings name (wayline/common/cpu_affinity.py, ADR 108)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.common.service_process import serving_process
from wayline.common.cpu_affinity import allowed_cpus, cpu_list_text, parse_cpu_list
from wayline.common.settings import ServiceSettings
from wayline_identity.settings import IdentitySettings


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("", set()), ("3", {3}), ("0-2", {0, 1, 2}), ("0,2-3", {0, 2, 3}), (" 1 , 4-5 ", {1, 4, 5})],
)
def test_a_cpu_list_reads_as_the_kernel_writes_it(text: str, cpus: set[int]) -> None:
    assert parse_cpu_list(text) == frozenset(cpus)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("a", "'a' is not a CPU"),
        ("3-1", "ends before it starts"),
        ("1,,2", "'' is not a CPU"),
        ("-1", "'-1' is not a CPU"),
        ("0-99999999", "99999999 is past the largest CPU number"),
    ],
)
def test_a_malformed_cpu_list_says_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_cpu_list(text)


def test_a_cpu_list_is_written_back_with_its_ranges_collapsed() -> None:
    assert cpu_list_text(frozenset({0, 1, 3, 5, 6, 7})) == "0-1,3,5-7"
    assert cpu_list_text(frozenset({2})) == "2"
    assert cpu_list_text(frozenset()) == ""


def test_no_affinity_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAYLINE_IDENTITY_CPU_AFFINITY", raising=False)
    assert IdentitySettings().cpus == frozenset()


def test_a_cpu_the_process_cannot_use_is_refused_naming_the_ones_it_can(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    beyond = max(allowed_cpus()) + 1
    monkeypatch.setenv("WAYLINE_IDENTITY_CPU_AFFINITY", f"{beyond}")
    with pytest.raises(ValueError, match=f"names CPU {beyond}, but this process may run only on "):
        IdentitySettings()


def _thread_cpus(pid: int) -> dict[int, frozenset[int]]:
    cpus = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            cpus[int(task)] = frozenset(os.sched_getaffinity(int(task)))
        except ProcessLookupError:  # a thread that ended since the listing
            continue
    return cpus


def test_every_thread_of_a_pinned_service_runs_on_its_cpus_only(tmp_path: Path) -> None:
    cpu = max(allowed_cpus())  # on a one-CPU machine the mask is the one it had, which still must hold
    environment = {"WAYLINE_IDENTITY_CPU_AFFINITY": str(cpu)}
    with serving_process(tmp_path, environment=environment) as (process, lines):
        threads = _thread_cpus(process.pid)
    pinned = next(line for line in lines if line.get("event") == "process.cpu_affinity")
    assert pinned["cpus"] == str(cpu)
    assert len(threads) > 5  # the gRPC server's and the service's threads, all started after the pin
    assert set(threads.values()) == {frozenset({cpu})}


def test_an_unpinned_service_keeps_the_cpus_it_was_given(tmp_path: Path) -> None:
    with serving_process(tmp_path) as (process, lines):
        threads = _thread_cpus(process.pid)
    assert not [line for line in lines if line.get("event") == "process.cpu_affinity"]
    assert set(threads.values()) == {allowed_cpus()}


def test_every_service_reads_its_own_cpu_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYLINE_IDENTITY_CPU_AFFINITY", str(min(allowed_cpus())))
    assert IdentitySettings().cpus == frozenset({min(allowed_cpus())})
    assert ServiceSettings.environment_variables()["cpu_affinity"] == ("WAYLINE_CPU_AFFINITY",)
    assert IdentitySettings.environment_variables()["cpu_affinity"] == ("WAYLINE_IDENTITY_CPU_AFFINITY",)
