"""The admin page's webhooks in headless Chromium: list a venue's webhooks, create one (its
secret shown once), see its recent deliveries to a real receiver on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.receiver import Receiver, until
from tests.serverproc import ServerProcess
from tests.test_web_browser import (  # the module's browser fixtures, shared
    browser,
    hold,
    http,
    new_restaurant,
    page,
    reserve,
    sign_in,
    slot,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]
__all__ = ["browser", "http", "page"]


@pytest.fixture(scope="module")
def server(redis_url: str) -> Iterator[ServerProcess]:
    """A server that may deliver to a receiver on this machine, and soon."""
    env = {"HOLDSVC_WEBHOOK_ALLOW_PRIVATE": "true", "HOLDSVC_WEBHOOK_POLL_SECONDS": "0.1"}
    with ServerProcess(redis_url, env=env, startup_timeout=90) as running:
        yield running


async def test_admin_lists_creates_and_watches_a_venues_webhooks(
    page: Page, http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await new_restaurant(http)
    async with Receiver() as receiver:
        listed = await http.post(
            f"/v1/restaurants/{rid}/webhooks", json={"url": receiver.url + "/pos"}
        )
        assert listed.status_code == 201
        await page.goto("/admin")
        await sign_in(page, server)
        await page.locator("#st-venue").select_option(f"/v1/restaurants/{rid}")
        panel = page.locator("#webhooks")
        await expect(panel).to_be_visible()
        await expect(panel.locator(".wh-list")).to_contain_text(receiver.url + "/pos")
        await expect(panel.locator(".wh-list")).to_contain_text("all events")

        await panel.get_by_label("Webhook URL").fill(receiver.url)
        await panel.get_by_label("Events (comma-separated, empty: all)").fill("held, confirmed")
        await panel.get_by_role("button", name="Create webhook").click()
        await expect(panel.locator(".wh-secret")).to_have_text(
            re.compile(r"^whsec_[A-Za-z0-9+/=]{40,}$")
        )
        secret = (await panel.locator(".wh-secret").inner_text()).strip()
        await expect(panel.locator(".wh-list")).to_contain_text("held, confirmed")
        hooks = (await http.get(f"/v1/restaurants/{rid}/webhooks")).json()["webhooks"]
        assert len(hooks) == 2 and secret not in str(hooks)

        await reserve(http, rid, slot(19))
        await until(lambda: len(receiver.delivered()) >= 4, what="held+confirmed to both URLs")
        await panel.get_by_role(
            "button", name=f"Show deliveries to {receiver.url}", exact=True
        ).click()
        table = panel.locator(".wh-deliveries table")
        await expect(table).to_contain_text("confirmed")
        await expect(table).to_contain_text("held")
        await expect(table.locator("tbody tr")).to_have_count(2)
        await expect(table).to_contain_text("200")

        await panel.get_by_role("button", name=f"Pause {receiver.url}", exact=True).click()
        await expect(page.locator("#messages")).to_contain_text("Webhook paused")
        await expect(panel.locator(".wh-list")).to_contain_text("paused (disabled by staff)")
        await hold(http, rid, slot(20))
        await panel.get_by_role("button", name=f"Delete {receiver.url}", exact=True).click()
        await expect(page.locator("#messages")).to_contain_text("Webhook deleted")
        hooks = (await http.get(f"/v1/restaurants/{rid}/webhooks")).json()["webhooks"]
        assert [h["url"] for h in hooks] == [receiver.url + "/pos"]
