"""Every page: no serious axe-core violation, no horizontal scroll at 390 px, reachable by
keyboard alone; screenshots at 1280 and 390 px written for a person to look at."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui import data
from tests.ui.conftest import SCREENSHOTS, Server, inject_axe

PAGES = {
    "customers": ("#/customers?q=example", "link:Ada Moreno"),
    "card": (f"#/customer/{data.derived_id('R-1')}", "button:Load more"),
    "activities": ("#/activities", "text:Anonymous cart"),
    "segments": ("#/segments", "link:Shoppers"),
    "segment": ("#/segment/Shoppers", "text:entered"),
    "status": ("#/status", "text:part-broken.csv"),
    "key": ("#/key", "button:Save for this session"),
}
CONTROLS = "a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])"


def wait_for_page(page: Page, ready: str) -> None:
    kind, _, name = ready.partition(":")
    target = page.get_by_text(name).first if kind == "text" else page.get_by_role(kind, name=name).first  # type: ignore[arg-type]
    expect(target).to_be_visible()
    expect(page.locator("main")).not_to_have_attribute("aria-busy", "true")  # nothing loading


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("name", PAGES)
def test_every_page_passes_axe_fits_the_width_and_is_screenshot(page: Page, sqlite_server: Server, name: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    hash_, ready = PAGES[name]
    page.goto(sqlite_server.ui + hash_)
    wait_for_page(page, ready)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert inject_axe(page) == []


@pytest.mark.parametrize("name", PAGES)
def test_keyboard_alone_reaches_every_control(page: Page, sqlite_server: Server, name: str) -> None:
    hash_, ready = PAGES[name]
    page.goto(sqlite_server.ui + hash_)
    wait_for_page(page, ready)
    total = page.evaluate(f"""() => {{
        const all = [...document.querySelectorAll("{CONTROLS}")].filter((e) => e.checkVisibility() && !e.disabled);
        all.forEach((e, i) => {{ e.dataset.kbd = i; }});
        return all.length;
    }}""")
    reached = set()
    for _ in range(total * 2 + 10):  # twice round is plenty; focus wraps past the last control
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement && document.activeElement.dataset.kbd"))
    missing = page.evaluate(
        "(seen) => [...document.querySelectorAll('[data-kbd]')].filter((e) => !seen.includes(e.dataset.kbd)).map((e) => e.outerHTML.slice(0, 80))",
        [r for r in reached if r is not None],
    )
    assert missing == []


def test_load_more_and_the_filters_work_from_the_keyboard(page: Page, sqlite_server: Server) -> None:
    page.goto(sqlite_server.ui + PAGES["card"][0])
    expect(page.locator("ol.timeline > li")).to_have_count(50)
    page.get_by_role("button", name="Load more").focus()
    page.keyboard.press("Enter")
    expect(page.locator("ol.timeline > li")).to_have_count(100)
    expect(page.locator("ol.timeline > li").nth(50)).to_be_focused()  # focus moves to what is new
    page.get_by_role("checkbox", name="CartAdds").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Apply").focus()
    page.keyboard.press("Enter")
    expect(page.locator("ol.timeline > li", has_text="EmailPromotionClicks")).to_have_count(0)
