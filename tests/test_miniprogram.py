"""The dealer mini-program (miniprogram/) against the backend.

- Every mini-program page the backend writes into messages, subscribe messages, policy and
  material cards or the OpenAPI document exists in miniprogram/app.json (with its files).
- The dealer's journey (miniprogram/test/e2e/journey.test.js): the mini-program's own pages
  and request module, `wx.*` shimmed to real HTTP, against the demo served as `demo serve`
  serves it (devtools.cli.start_demo) with the WeChat stand-in. Needs Node and
  `npm ci` in miniprogram/ (the Makefile's test target runs it first); without them the test
  is skipped, unless REQUIRE_SERVICES=1 (CI): then it fails.
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from app.kernel import clock
from tests.conftest import REQUIRE_SERVICES, served_demo

ROOT = Path(__file__).resolve().parent.parent
MINIPROGRAM = ROOT / "miniprogram"
APP_JSON = json.loads((MINIPROGRAM / "app.json").read_text(encoding="utf-8"))
PAGES = set(APP_JSON["pages"])

# A page path in the code: "pages/order/detail?order_no={order_no}", "/pages/material/detail".
PAGE_PATH = re.compile(r"""["'/](pages/[a-z0-9_]+/[a-z0-9_]+)(?=[?"'])""")
BACKEND = ("app", "bots", "callbacks", "console", "miniprogram_api", "devtools", "templates")


def written_page_paths():
    found = {}
    for folder in BACKEND:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".html", ".txt", ".json") or "__pycache__" in path.parts:
                continue
            for match in PAGE_PATH.finditer(path.read_text(encoding="utf-8")):
                found.setdefault(match.group(1), f"{path.relative_to(ROOT)}")
    return found


def test_the_scan_sees_the_pages_the_messages_open():
    found = written_page_paths()
    for page in ("pages/order/detail", "pages/return/detail", "pages/payment/offline", "pages/rebate/detail",
                 "pages/statement/detail", "pages/policy/detail", "pages/material/detail"):
        assert page in found, f"{page} is no longer written anywhere: is the scan still right?"


def test_every_page_the_backend_writes_exists_in_app_json():
    missing = {page: where for page, where in written_page_paths().items() if page not in PAGES}
    assert not missing, f"pages the backend links to but the mini-program lacks (page → where): {missing}"


def test_the_message_page_templates_open_pages_of_the_miniprogram():
    from app.materials.dealer import DETAIL_PAGE
    from app.notify import dealer_alerts
    from app.policies.authoring import MP_PAGE

    templates = [dealer_alerts.ORDER_PAGE, dealer_alerts.RETURN_PAGE, dealer_alerts.OFFLINE_PAYMENT_PAGE,
                 dealer_alerts.REBATE_PAGE, dealer_alerts.STATEMENT_PAGE, MP_PAGE, DETAIL_PAGE]
    for template in templates:
        assert template.lstrip("/").split("?")[0] in PAGES, template


def test_the_pages_named_in_the_openapi_document_exist(app):
    spec = json.dumps(app.test_client().get("/api/mp/v1/openapi.json").get_json(), ensure_ascii=False)
    named = set(re.findall(r"pages/[a-z0-9_]+/[a-z0-9_]+", spec))
    assert named and named <= PAGES, named - PAGES


def test_every_page_in_app_json_has_its_files_and_the_tab_bar_names_pages():
    for page in PAGES:
        for suffix in (".js", ".wxml", ".json"):
            assert (MINIPROGRAM / f"{page}{suffix}").is_file(), f"{page}{suffix}"
    assert {tab["pagePath"] for tab in APP_JSON["tabBar"]["list"]} <= PAGES
    config = json.loads((MINIPROGRAM / "project.config.json").read_text(encoding="utf-8"))
    assert config["compileType"] == "miniprogram"


# --- the journey -----------------------------------------------------------------------------

def _node_and_jest():
    node = shutil.which("node")
    jest = MINIPROGRAM / "node_modules" / ".bin" / "jest"
    missing = []
    if not node:
        missing.append("Node.js (node) is not installed")
    elif not jest.exists():
        missing.append("miniprogram/node_modules is missing: run `cd miniprogram && npm ci`")
    if missing:
        if REQUIRE_SERVICES:
            pytest.fail(f"REQUIRE_SERVICES=1 but {missing[0]}", pytrace=False)
        pytest.skip(missing[0])
    return node, jest


def _seed_row(output, first, contains=""):
    row = next(line for line in output.splitlines() if line.split()[:1] == [first] and contains in line)
    return row.split()[-1]


@pytest.fixture(scope="module")
def demo_served(tmp_path_factory, _sqlite_template):
    """The demo as `demo serve` serves it, on free ports: (api base, stand-in base, seed output)."""
    with served_demo(tmp_path_factory.mktemp("miniprogram-demo"), _sqlite_template) as demo:
        yield demo


def test_the_dealer_journey_in_the_miniprogram_runs_against_the_demo(demo_served):
    node, jest = _node_and_jest()
    base, standin, seed_output = demo_served
    env = {
        **os.environ,
        "DINGHUO_E2E_API": f"{base}/api/mp/v1",
        "DINGHUO_E2E_STANDIN": standin,
        "DINGHUO_E2E_INVITES": json.dumps({"owner": _seed_row(seed_output, "D001", "负责人"),
                                           "viewer": _seed_row(seed_output, "D001", "只读")}),
        "DINGHUO_E2E_WAREHOUSE": json.dumps({"username": "cangku", "password": _seed_row(seed_output, "cangku")}),
        "DINGHUO_E2E_TODAY": clock.business_today().isoformat(),
        "CI": "1",  # no watch mode, no interactive output
    }
    run = subprocess.run([node, str(jest), "--ci", "--colors=false", "test/e2e"], cwd=MINIPROGRAM, env=env,
                         capture_output=True, text=True, timeout=180)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "skipped" not in report.split("Tests:")[-1], report
    assert re.search(r"Tests:\s+\d+ passed", report), report
