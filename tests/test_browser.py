"""The console in a real browser: headless Debian Chromium, driven by Selenium, against a real
HTTP server started here (werkzeug in a thread, on a free port, SQLite).

It signs in at /console/login, sees the dashboard draw its charts from their JSON endpoints,
approves a pending order, opens it, ships part of it and sees the status change to 部分发货. Screenshots go to tests/artifacts/
(gitignored); their paths are printed (`pytest -s`) and listed in the failure report.

Needs Debian's `chromium` and `chromium-driver` (`make browser-deps`); installs nothing itself.
Without them the test is skipped, unless REQUIRE_SERVICES=1 (CI): then it fails.
"""
import os
import shutil
from pathlib import Path

import pytest

from app.extensions import db
from tests.conftest import REQUIRE_SERVICES, served
from tests.factories import auth
from console.auth import NAV
from tests.helpers import PASSWORD, submit

CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).parent / "artifacts"
WAIT_SECONDS = 15


def _require_browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.exists(p) or shutil.which(p))]
    if missing:
        why = f"Chromium/ChromeDriver not installed ({', '.join(missing)}): run `make browser-deps`"
        if REQUIRE_SERVICES:
            pytest.fail(f"REQUIRE_SERVICES=1 but {why}", pytrace=False)
        pytest.skip(why)


@pytest.fixture
def server(app):
    """The test's app served over real HTTP on 127.0.0.1."""
    with served(app) as base_url:
        yield base_url


@pytest.fixture
def browser():
    _require_browser()
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1366,1000", "--lang=zh-CN", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def screenshot(driver, name):
    """A full-page PNG under tests/artifacts/; returns its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    driver.set_window_size(1366, 800)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1366, min(max(height, 800), 6000))
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def wait_for(driver, condition, message):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # A page being replaced by the next one (after a click) makes elements stale: keep waiting.
    wait = WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,))
    return wait.until(condition, message)


def text_of(driver):
    """The page's visible text, read in one script call (no element to go stale mid-navigation)."""
    return driver.execute_script("return document.body ? document.body.innerText : ''")


def browser_errors(driver):
    # The console has no favicon; the browser's automatic request for one is not the page's error.
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]


def test_staff_sign_in_see_the_dashboard_approve_and_partly_ship_an_order_in_a_real_browser(
    app, client, world, staff, server, browser
):
    from selenium.webdriver.common.by import By

    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 3}, {"sku_id": world.soy.id, "qty": 2}])
    assert r.status_code == 201, r.json
    order_no = r.json["order_no"]
    assert r.json["status"] == "pending_approval"
    db.session.remove()

    # Sign in through the form, as a person would.
    browser.get(f"{server}/console/login")
    browser.find_element(By.NAME, "username").send_keys("boss")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit], form input[type=submit]").click()
    wait_for(browser, lambda d: d.current_url.rstrip("/").endswith("/console"), "not sent to the dashboard")

    # The dashboard: figures in the page, and every chart drawn from its JSON endpoint.
    assert "仪表盘" in text_of(browser) and "统计口径" in text_of(browser)
    canvases = browser.find_elements(By.CSS_SELECTOR, "canvas[data-url]")
    assert len(canvases) == 9  # five sales charts, then growth, coverage, cycle time and the reps' targets
    wait_for(browser, lambda d: all(c.get_attribute("data-rendered") is not None for c in canvases),
             "the charts were not drawn (Chart.js or a JSON endpoint failed)")
    assert browser.execute_script("return typeof window.Chart") == "function"
    assert browser.execute_script(
        "return Array.from(document.querySelectorAll('canvas[data-url]')).every(c => window.Chart.getChart(c))")
    pending = browser.find_element(By.CSS_SELECTOR, "#card-pending a")
    assert pending.text == "1 笔"
    dashboard_png = screenshot(browser, "dashboard")

    # Approve the order from the pending list.
    pending.click()
    wait_for(browser, lambda d: order_no in text_of(d), "the order is not in the pending list")
    browser.find_element(By.CSS_SELECTOR, f"form[action$='/orders/{order_no}/approve'] button").click()
    wait_for(browser, lambda d: "已审批通过" in text_of(d), "no confirmation after approving")

    # Open the order from the order list and ship part of it: 1 of the 3 cola, none of the soy sauce.
    browser.find_element(By.LINK_TEXT, "订单").click()
    wait_for(browser, lambda d: order_no in text_of(d), "the order is not in the order list")
    browser.find_element(By.LINK_TEXT, order_no).click()
    wait_for(browser, lambda d: "登记发货" in text_of(d), "the order page offers no shipment form")
    assert "已审批" in text_of(browser)
    quantities = browser.find_elements(By.CSS_SELECTOR, "input[name^='qty_']")
    assert len(quantities) == 2
    for field, qty in zip(quantities, ("1", "0")):
        field.clear()
        field.send_keys(qty)
    browser.find_element(By.NAME, "carrier").send_keys("顺丰速运")
    browser.find_element(By.NAME, "tracking_no").send_keys("SF1234567890")
    browser.find_element(By.CSS_SELECTOR, f"form[action$='/orders/{order_no}/ship'] button[type=submit]").click()
    wait_for(browser, lambda d: "第 1 次发货已登记" in text_of(d), "no confirmation after shipping")
    page = text_of(browser)
    assert "部分发货" in page and "SF1234567890" in page
    order_png = screenshot(browser, "order")

    from app.orders.models import Order

    db.session.expire_all()
    order = db.session.execute(db.select(Order).where(Order.order_no == order_no)).scalar_one()
    assert order.status == "partially_shipped"
    assert sorted(line.shipped_qty for line in order.lines) == [0, 1]
    assert browser_errors(browser) == []
    assert dashboard_png.stat().st_size > 10_000 and order_png.stat().st_size > 5_000

    # Every page above ran under the console's Content-Security-Policy (no inline script):
    # a violation would be a SEVERE browser log entry. The staff page too.
    browser.get(f"{server}/console/staff")
    wait_for(browser, lambda d: "员工账号" in text_of(d) and "rep2" in text_of(d), "the staff page did not open")
    assert browser_errors(browser) == []

    # The master-data pages under 设置: each opens under the same policy and fits the window.
    from selenium.webdriver.common.by import By

    browser.find_element(By.LINK_TEXT, "rep2").click()
    wait_for(browser, lambda d: "重置密码" in text_of(d) and "停用该账号" in text_of(d), "the account page did not open")
    for path, shown in (("/console/tiers", "金牌"), ("/console/warehouses", "华南仓"), ("/console/regions", "广东省")):
        browser.get(f"{server}{path}")
        wait_for(browser, lambda d: shown in text_of(d), f"{path} did not open")
        assert browser.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth"), path
        assert browser_errors(browser) == [], path
    assert "广州市" not in text_of(browser)  # the region tree starts folded at the provinces
    browser.find_element(By.XPATH, "//ul[@id='regions']/li[span[contains(., '广东省')]]/details/summary").click()
    wait_for(browser, lambda d: "广州市" in text_of(d), "the region tree did not open")
    screenshot(browser, "console-regions")


MENU_GROUPS = ["订单", "经销商", "商品与价格", "库存", "财务", "营销", "设置"]

# Per menu link: its box, and how many line boxes its text takes (1 unless it wrapped).
MENU_LINKS_JS = """
return Array.from(document.querySelectorAll('nav.side a')).map(a => {
  const range = document.createRange(); range.selectNodeContents(a);
  const box = a.getBoundingClientRect();
  return {text: a.textContent, lines: range.getClientRects().length, height: box.height,
          lineHeight: parseFloat(getComputedStyle(a).lineHeight), top: box.top, bottom: box.bottom};
});
"""
LAYOUT_JS = """
const nav = document.querySelector('nav.side').getBoundingClientRect();
const main = document.querySelector('main').getBoundingClientRect();
const table = document.querySelector('main table');
return {nav: {left: nav.left, right: nav.right, bottom: nav.bottom, width: nav.width},
        main: {left: main.left, top: main.top, width: main.width},
        table: table ? table.getBoundingClientRect().width : null,
        inner: document.documentElement.clientWidth, scroll: document.documentElement.scrollWidth,
        groups: Array.from(document.querySelectorAll('nav.side h2')).map(h => h.textContent)};
"""


def _sign_in(browser, server, username):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/console/login")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit], form input[type=submit]").click()
    wait_for(browser, lambda d: d.current_url.rstrip("/").endswith("/console"), "not sent to the dashboard")


def _at_width(browser, server, width, path):
    browser.set_window_size(width, 900)
    browser.get(f"{server}{path}")
    wait_for(browser, lambda d: d.execute_script("return !!document.querySelector('nav.side a')"), "no menu")
    return browser.execute_script(MENU_LINKS_JS), browser.execute_script(LAYOUT_JS)


def _one_line_each(links):
    assert links, "the menu has no links"
    for link in links:
        assert link["lines"] == 1 and link["height"] < 2 * link["lineHeight"], link


def test_the_grouped_menu_fits_at_1280_px_and_on_a_tablet(app, client, world, staff, server, browser):
    assert submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}]).status_code == 201
    db.session.remove()
    _sign_in(browser, server, "boss")

    # 1280 px: a sidebar of the seven groups beside the page, each link on one line; the page's
    # table takes the rest of the width.
    links, layout = _at_width(browser, server, 1280, "/console/orders")
    assert layout["groups"] == MENU_GROUPS
    assert [link["text"] for link in links] == [label for label, _path, _needed in NAV]  # the admin sees every page
    _one_line_each(links)
    assert layout["nav"]["right"] <= layout["main"]["left"] + 1
    assert layout["main"]["width"] >= layout["inner"] - layout["nav"]["width"] - 2
    assert layout["table"] >= layout["main"]["width"] - 60  # main's padding aside
    assert layout["scroll"] <= layout["inner"]
    current = browser.execute_script("return document.querySelector('nav.side a[aria-current=page]').textContent")
    assert current == "订单"
    screenshot_at = ARTIFACTS / "menu-1280.png"
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(screenshot_at))

    # A tablet, 800 px: the groups above the page, still one line a link, nothing off-screen.
    links, layout = _at_width(browser, server, 800, "/console/orders")
    assert layout["groups"] == MENU_GROUPS
    _one_line_each(links)
    assert layout["nav"]["bottom"] <= layout["main"]["top"] + 1
    assert layout["main"]["width"] >= layout["inner"] - 20
    assert layout["scroll"] <= layout["inner"]
    browser.save_screenshot(str(ARTIFACTS / "menu-800.png"))
    assert browser_errors(browser) == []


def test_a_warehouse_clerk_sees_only_the_groups_of_their_pages(app, client, world, staff, server, browser):
    _sign_in(browser, server, "cang")
    links, layout = _at_width(browser, server, 1280, "/console/")
    assert layout["groups"] == ["订单", "商品与价格", "库存", "设置"]  # no 经销商, 财务, 营销
    _one_line_each(links)


def test_dashboard_axes_and_tooltips_carry_their_units(app, client, world, staff, server, browser):
    _sign_in(browser, server, "boss")
    browser.set_window_size(1280, 900)
    wait_for(browser, lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('canvas[data-url]')).every(c => c.dataset.rendered !== undefined)"),
        "the charts were not drawn")
    units = browser.execute_script("""
      const chart = id => window.Chart.getChart(document.querySelector('#' + id + ' canvas'));
      const daily = chart('daily-sales'), dealers = chart('top-dealers'), tier = chart('sales-by-tier');
      return {
        dailyTitle: daily.options.scales.y.title.text,
        dailyTicks: daily.scales.y.ticks.map(t => t.label),
        dailyTip: daily.options.plugins.tooltip.callbacks.label({raw: 1234.5, label: '11-26'}),
        dealersTitle: dealers.options.scales.x.title.text,
        tierTip: tier.options.plugins.tooltip.callbacks.label({raw: 12, label: '金牌'}),
        growthTitle: chart('growth').options.scales.y.title.text,
        coverageTitle: chart('coverage').options.scales.y.title.text,
        coverageTicks: chart('coverage').scales.y.ticks.map(t => t.label),
        coverageTip: chart('coverage').options.plugins.tooltip.callbacks.label({raw: 66.67, label: '广东省'}),
        cycleTitle: chart('cycle-times').options.scales.y.title.text,
        cycleTip: chart('cycle-times').options.plugins.tooltip.callbacks.label(
          {raw: 3.5, label: '提交 → 审批', dataset: {label: '中位数'}}),
        attainmentTitle: chart('attainment').options.scales.x.title.text,
      };
    """)
    assert units["dailyTitle"] == "金额（元）" and units["dealersTitle"] == "金额（元）"
    assert units["dailyTicks"] and all(t.startswith("¥") for t in units["dailyTicks"]), units
    assert units["dailyTip"] == "¥1,234.50" and units["tierTip"] == "金牌：¥12.00"
    assert units["growthTitle"] == "金额（元）" and units["coverageTitle"] == "覆盖率（%）"
    assert units["coverageTicks"] and all(t.endswith("%") for t in units["coverageTicks"]), units
    assert units["coverageTip"] == "66.67%" and units["cycleTitle"] == "时长（小时）"
    assert units["cycleTip"] == "中位数：3.5 小时" and units["attainmentTitle"] == "达成率（%）"
