"""Export values stay text, the CSP holds, the function key is asked for plainly."""

from __future__ import annotations

from playwright.sync_api import Page, Request, expect

from tests.ui import data
from tests.ui.conftest import Server
from tests.ui.test_card import ROWS, open_card


def test_markup_in_an_export_shows_as_text_and_a_javascript_url_is_no_link(page: Page, sqlite_server: Server) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_card(page, sqlite_server, "R-666", "Eve <b>Bold</b>")
    rows = page.locator(ROWS)
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text(data.SCRIPT_TITLE)
    expect(rows.nth(0)).to_contain_text(data.IMG_TITLE)
    expect(rows.nth(1).get_by_text(data.JS_URL)).to_be_visible()
    assert page.locator("main img, main script, main b").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    expect(rows.nth(0).get_by_role("link", name="https://shop.example.com/ok")).to_be_visible()
    assert page.evaluate("window.__xss") is None and not dialogs


def test_the_page_carries_a_strict_csp_and_an_inline_script_is_refused(page: Page, sqlite_server: Server) -> None:
    response = page.goto(sqlite_server.ui)
    assert response is not None
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["content-type"] == "text/html; charset=utf-8"
    expect(page.get_by_role("heading", name="Customers")).to_be_visible()  # app.js ran
    violated = page.evaluate("""() => new Promise((resolve) => {
        document.addEventListener("securitypolicyviolation", (e) => resolve(e.effectiveDirective), {once: true});
        const script = document.createElement("script");
        script.textContent = "window.__inline = 1";
        document.body.append(script);
    })""")
    assert violated.startswith("script-src")
    assert page.evaluate("window.__inline") is None


def test_a_missing_or_wrong_function_key_says_so_and_the_key_never_enters_a_url(page: Page, keyed_server: Server) -> None:
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r))
    page.goto(keyed_server.ui + "#/customers?q=Ada")
    expect(page.get_by_role("alert")).to_contain_text("This server wants a function key.")
    page.get_by_role("link", name="Enter the function key").click()
    page.get_by_label("Function key").fill("wrong-key")
    page.get_by_role("button", name="Save for this session").click()
    page.goto(keyed_server.ui + "#/customers?q=Ada")
    expect(page.get_by_role("alert")).to_contain_text("The function key was refused.")
    page.goto(keyed_server.ui + "#/key")
    page.get_by_label("Function key").fill("right-key")
    page.get_by_role("button", name="Save for this session").click()
    page.goto(keyed_server.ui + "#/customers?q=Ada")
    expect(page.get_by_role("link", name="Ada Moreno")).to_be_visible()
    api = [r for r in requests if "/api/customers" in r.url]
    assert api and api[-1].headers.get("x-functions-key") == "right-key"
    assert not any("key" in r.url for r in requests)


def test_status_shows_a_failed_files_reason_and_reprocesses_a_file(page: Page, sqlite_server: Server) -> None:
    page.goto(sqlite_server.ui + "#/status")
    problems = page.get_by_role("region", name="Failed and quarantined files")
    expect(problems).to_contain_text(data.FAILING_FILE)
    expect(problems).to_contain_text("no column Signal.Export.Id among the file")
    page.get_by_label("File path in the export container").fill("RetailCustomers/customers.csv")
    page.get_by_role("button", name="Reprocess", exact=True).click()
    expect(page.get_by_text("RetailCustomers/customers.csv: done")).to_be_visible()
    problems.get_by_role("button", name=f"Reprocess {data.FAILING_FILE}").click()
    expect(page.locator("main [role=status]").last).to_contain_text("Signal.Export.Id")


def test_status_shows_a_rejected_rows_excerpt(page: Page, sqlite_server: Server) -> None:
    if sqlite_server.get("rejects")[0] == 404:
        page.goto(sqlite_server.ui + "#/status")
        # Until GET /api/rejects lands the page says where rejects are counted instead.
        expect(page.get_by_role("region", name="Recent rejects")).to_contain_text("cannot list rejects yet")
        return
    page.goto(sqlite_server.ui + "#/status")
    rejects = page.get_by_role("region", name="Recent rejects")
    expect(rejects).to_contain_text(data.REJECTING_FILE)
    expect(rejects.locator("pre")).to_contain_text(data.BAD_TIME)
