"""Search -> card -> load more -> type filter -> date range, measure tiles, segment chips and the
Segments page, on SQLite and on Azure Tables."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui import data
from tests.ui.conftest import Server

ROWS = "ol.timeline > li"


@pytest.fixture(params=["sqlite", pytest.param("azure", marks=pytest.mark.azurite)])
def server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue(f"{request.param}_server")


def open_card(page: Page, server: Server, text: str, name: str) -> None:
    response = page.goto(server.ui + "#/customers")
    # footprint dev and serve pass the UI function's headers on (they once dropped them).
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("Key, customer id or attribute").fill(text)
    page.get_by_label("Key, customer id or attribute").press("Enter")
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def test_a_customer_is_found_and_their_timeline_paged_filtered_and_ranged(page: Page, server: Server) -> None:
    times = data.busy_times()
    open_card(page, server, "ada@example", "Ada Moreno")
    rows = page.locator(ROWS)
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text(f"Page {data.BUSY_EVENTS - 1}")  # newest first
    expect(page.get_by_text("CartAdds").first).to_be_visible()  # counts per type
    page.get_by_role("button", name="Load more").click()
    expect(rows).to_have_count(100)
    page.get_by_role("button", name="Load more").click()
    expect(rows).to_have_count(data.BUSY_EVENTS)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    expect(rows.last).to_contain_text("Page 0")

    page.get_by_role("checkbox", name="CartAdds").check()
    page.get_by_role("button", name="Apply").click()
    carts = [t for name, t in times if name == "CartAdds"]
    expect(rows).to_have_count(len(carts))
    expect(page.locator(ROWS, has_text="EmailPromotionClicks")).to_have_count(0)

    page.get_by_label("From").fill("2021-07-01")
    page.get_by_label("To (inclusive)").fill("2021-07-10")
    page.get_by_role("button", name="Apply").click()
    in_range = [t for t in carts if "2021-07-01" <= t[:10] <= "2021-07-10"]
    assert 0 < len(in_range) < len(carts)
    expect(rows).to_have_count(len(in_range))
    assert "type=CartAdds" in page.url and "from=2021-07-01" in page.url


def test_a_search_that_matches_no_one_says_what_to_try(page: Page, sqlite_server: Server) -> None:
    page.goto(sqlite_server.ui + "#/customers?q=nobody-at-all")
    expect(page.get_by_text("No customer matches.")).to_be_visible()


def test_an_unknown_customer_id_says_where_to_look(page: Page, sqlite_server: Server) -> None:
    page.goto(sqlite_server.ui + "#/customer/c-nobody")
    expect(page.get_by_role("alert")).to_contain_text("no customer 'c-nobody'")
    expect(page.get_by_role("link", name="Go to Customers")).to_be_visible()


def test_the_activities_page_filters_by_type_and_unmatched(page: Page, sqlite_server: Server) -> None:
    page.goto(sqlite_server.ui + "#/activities")
    expect(page.locator(ROWS)).to_have_count(100)
    page.get_by_label("Only unmatched").check()
    page.get_by_role("button", name="Show").click()
    expect(page.locator(ROWS)).to_have_count(1)
    expect(page.locator(ROWS)).to_contain_text("Anonymous cart")
    page.get_by_label("Only unmatched").uncheck()
    page.get_by_label("Type (name or display type)").fill("CartAdds")
    page.get_by_role("button", name="Show").click()
    carts = sum(1 for name, _ in data.busy_times() if name == "CartAdds") + 1
    expect(page.locator(ROWS)).to_have_count(carts)


def test_the_segments_page_lists_sizes_members_and_changes(page: Page, server: Server) -> None:
    page.goto(server.ui + "#/segments")
    expect(page.locator("ul.results > li")).to_have_count(1)
    expect(page.locator("ul.results > li")).to_contain_text("1 members")
    page.get_by_role("link", name="Shoppers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Segment Shoppers")
    members = page.get_by_role("region", name="Members")
    expect(members.get_by_role("link", name=data.derived_id("R-1"))).to_be_visible()
    expect(members).to_contain_text("RetailCustomers: R-1")
    expect(page.get_by_role("region", name="Recent changes")).to_contain_text("entered")
    members.get_by_role("link", name=data.derived_id("R-1")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada Moreno")


def test_the_card_shows_measure_tiles_and_segment_chips(page: Page, server: Server) -> None:
    carts = sum(1 for name, _ in data.busy_times() if name == "CartAdds")
    open_card(page, server, "ada@example", "Ada Moreno")
    tiles = page.get_by_role("region", name="Measures").locator("ul.tiles > li")
    expect(tiles).to_have_count(1)
    expect(tiles.first.locator(".value")).to_have_text(str(carts))
    expect(tiles.first).to_contain_text("Carts")
    expect(page.get_by_role("list", name="Segments").get_by_role("listitem")).to_have_text(["Shoppers"])
    page.get_by_role("link", name="Customers").click()
    page.get_by_label("Key, customer id or attribute").fill("bram@example")
    page.get_by_label("Key, customer id or attribute").press("Enter")
    page.get_by_role("link", name="Bram de Vries").click()  # no cart: in no segment
    expect(page.get_by_role("region", name="Segments")).to_contain_text("In no segment.")
