"""The harness itself: the `console` fixture would fail a test whose page broke the Content-Security-Policy
or threw, so a passing console test means the page did neither; and a screenshot lands among the artefacts."""

from __future__ import annotations

import time

from tests.console.browser import Console, read_table


def _reported(console: Console, *starts: str) -> bool:
    """Whether the console has a problem beginning with each of `starts`, waiting a little for them."""
    deadline = time.monotonic() + 10
    while True:
        if all(any(problem.startswith(start) for problem in console.problems) for start in starts):
            return True
        if time.monotonic() > deadline:
            return False
        console.page.wait_for_timeout(50)


def test_inline_script_and_uncaught_errors_are_problems(console: Console) -> None:
    page = console.load()  # the sign-in form is enough: the policy is the page's
    assert console.problems == []
    page.evaluate(
        """() => {
            const inline = document.createElement("script");
            inline.textContent = "window.inlineRan = true;";
            document.head.append(inline);
            setTimeout(() => { throw new Error("thrown by the harness test"); });
        }"""
    )
    assert _reported(console, "CSP: ", "uncaught: thrown by the harness test"), console.problems
    assert page.evaluate("() => window.inlineRan ?? false") is False  # the policy stopped it
    console.problems.clear()  # seen: the fixture's teardown must not fail this test for them


def test_a_refused_bridge_call_is_no_problem_but_a_missing_asset_is(console: Console) -> None:
    page = console.load()
    status = page.evaluate(
        """async () => (await fetch("/wayline.identity.v1.IdentityService/GetProfile", {
            method: "POST", headers: {"Content-Type": "application/json"}, body: "{}",
        })).status"""
    )
    assert status == 401
    page.evaluate(
        """() => {
            const image = document.createElement("img");
            image.src = "/console/assets/missing.png";
            image.alt = "";
            document.body.append(image);
        }"""
    )
    assert _reported(console, "console.error: Failed to load resource"), console.problems
    assert [problem for problem in console.problems if "wayline.identity" in problem] == []
    assert all("missing.png" in problem for problem in console.problems), console.problems
    console.problems.clear()  # seen: the fixture's teardown must not fail this test for them


def test_a_screenshot_is_saved_as_an_artefact(console: Console) -> None:
    console.open("#/funnels")
    saved = console.shot("funnels page")
    assert saved.name == "test_a_screenshot_is_saved_as_an_artefact-funnels-page.png"
    assert saved.read_bytes().startswith(b"\x89PNG")


def test_a_data_table_reads_as_raw_values_and_shown_texts(console: Console) -> None:
    """`read_table` on a table as dom.js's dataTable builds it (numeric cells carry their raw value)."""
    page = console.load()
    page.evaluate(
        """() => {
            const cell = (tag, key, text, value) => {
                const element = document.createElement(tag);
                element.dataset.key = key;
                if (value !== undefined) element.dataset.value = value;
                element.textContent = text;
                return element;
            };
            const table = document.createElement("table");
            table.dataset.testid = "harness-table";
            table.createCaption().textContent = "Steps";
            const head = table.createTHead().insertRow();
            for (const label of ["Step", "Persons"]) {
                head.append(Object.assign(document.createElement("th"), {textContent: label}));
            }
            const body = table.createTBody();
            for (const [step, count] of [["Viewed", "12345"], ["Bought", "67"]]) {
                const row = body.insertRow();
                row.dataset.row = step.toLowerCase();
                const shown = Number(count).toLocaleString("en-GB");
                row.append(cell("th", "label", step), cell("td", "count", shown, count));
            }
            table.hidden = true;  // folded behind its toggle: still readable
            document.querySelector("main").append(table);
        }"""
    )
    table = read_table(page.get_by_test_id("harness-table"))
    assert table.columns == ["Step", "Persons"]
    assert table.rows == [{"label": "Viewed", "count": "12345"}, {"label": "Bought", "count": "67"}]
    assert table.column("count") == ["12345", "67"]
    assert table.texts == [["Viewed", "12,345"], ["Bought", "67"]]
    assert table.row_keys == ["viewed", "bought"]
