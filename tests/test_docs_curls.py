"""Every `curl` in the docs is run here, with the real curl binary, against the demo as
`make demo` serves it: the demo brand seeded (`flask demo seed`) into a SQLite file in a temp
directory, then the API and the stand-in started by `devtools.cli.start_demo` (what `demo serve`
runs) on free local ports.

The pages' shell blocks run in order in one terminal, the way a reader pastes them: README.md's
walk-through first, then docs/demo.md, then the other pages (those that need `$API`/`$TOKEN`
say they continue from the demo tour). The only changes to a page's text are the documented
addresses (127.0.0.1:5000 / :5001 -> the free ports) and the documented `<邀请码>` placeholder
(-> a fresh D001 invite from the seed's output). A `# 管理后台：…` comment in a block is a step
a person takes in the console; the test takes it there over HTTP (`CONSOLE_STEPS`) and the
block goes on.

`curl` in the terminal is a shell function that runs the real binary with the page's own
arguments and also keeps each answer's HTTP status and body, so each command's exit status and
answer are checked against what the page says (`EXPECTED`). A curl in the docs that the run
did not execute, or that has no expectation here, fails the test.

One demo serves the whole module. The run takes seconds (about 3 s to seed the demo brand with
its three months of history, about 5 s for some fifty requests, each a curl plus the page's
`python3 -c` that reads its answer): that is the price of running the commands as printed.
"""
import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.conftest import served_demo
from tests.materials_support import image_bytes

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API_ADDRESS, STANDIN_ADDRESS = "http://127.0.0.1:5000", "http://127.0.0.1:5001"
CURL = re.compile(r"(?<![\w/.-])curl\s+[-$\"'h]")
FENCE = re.compile(r"^\s*```")
CONSOLE = re.compile(r"^#\s*管理后台[：:]\s*(.+?)\s*$")
ASSIGNED = re.compile(r"^([A-Z][A-Z0-9_]*)=")


# --- the docs' shell blocks -----------------------------------------------------------

def pages():
    """README.md, docs/demo.md, then the other pages: the order a reader's terminal sees them."""
    others = sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts and p.name != "demo.md")
    return [ROOT / "README.md", DOCS / "demo.md", *others]


def name_of(page):
    return page.relative_to(ROOT).as_posix()


def blocks(page):
    """[(first line number, [logical lines])] of the page's fenced code blocks; a line ending in
    a backslash continues on the next."""
    found, current, start = [], None, 0
    for number, line in enumerate(page.read_text().splitlines(), 1):
        if FENCE.match(line):
            if current is None:
                current, start = [], number + 1
            else:
                found.append((start, _logical(current)))
                current = None
        elif current is not None:
            current.append(line)
    return found


def _logical(lines):
    out, pending = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
        else:
            out.append(pending + line)
            pending = ""
    return out + ([pending] if pending else [])


def curls_in_prose(page):
    """Lines outside fenced blocks that hold a curl command (inline code)."""
    inside, found = False, []
    for number, line in enumerate(page.read_text().splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
        elif not inside and CURL.search(line):
            found.append(f"{name_of(page)}:{number}: {line.strip()}")
    return found


def runnable(lines):
    """A block the terminal runs: one with a curl, or one that only sets addresses (API=…, S=…)."""
    commands = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return any(CURL.search(line) for line in commands) or (
        commands and all(re.fullmatch(r"[A-Z][A-Z0-9_]*=[^\s$`;|&]+", line.strip()) for line in commands))


def signature(command):
    """`METHOD URL` of a curl command as the page writes it, e.g. `POST $API/orders/$NO/pay`."""
    args = command[CURL.search(command).start():]
    method = re.search(r"\s-X\s+(\w+)", args)
    url = re.search(r"""["']?((?:\$API|\$S|https?://)[^\s"']*)""", args)
    return f"{method.group(1) if method else 'GET'} {url.group(1)}"


def curl_id(page, block_start, index):
    """`docs~demo.md#38.2`: the third command of the block starting on line 38 (a file name)."""
    return f"{name_of(page).replace('/', '~')}#{block_start}.{index}"


def doc_curls():
    """[(page name, line id, command)] for every curl in a runnable fenced block of the docs."""
    found = []
    for page in pages():
        for start, lines in blocks(page):
            if runnable(lines):
                found += [(name_of(page), curl_id(page, start, i), line)
                          for i, line in enumerate(lines) if CURL.search(line)]
    return found


# --- the terminal -----------------------------------------------------------------------

WRAPPER = r'''
set -eo pipefail
_doc_curl() { echo "$1" > "$DOC_LOG/current"; }
# A session moved in time (DINGHUO_TEST_NOW, see conftest) moves the terminal's `date` with it.
if [ -n "$DINGHUO_TEST_CLOCK_SHIFT" ]; then
  date() { command date -d "@$(( $(command date +%s) + ${DINGHUO_TEST_CLOCK_SHIFT%.*} ))" "$@"; }
fi
curl() {
  local id rc=0
  id=$(<"$DOC_LOG/current")
  command curl -D "$DOC_LOG/$id.head" "$@" > "$DOC_LOG/$id.body" || rc=$?
  echo "$rc" >> "$DOC_LOG/$id.rc"
  cat "$DOC_LOG/$id.body"
  return $rc
}
'''


class Terminal:
    """One reader's terminal: bash in a scratch directory holding the reader's `回单.jpg`;
    shell variables carry from one stretch of commands to the next (across console steps)."""

    def __init__(self, directory, substitutions):
        self.directory, self.log, self.state = directory, directory / "log", directory / "state.sh"
        self.log.mkdir()
        (directory / "回单.jpg").write_bytes(image_bytes("JPEG", size=(120, 80)))
        self.substitutions = substitutions
        self.names = set()

    def run(self, lines, where):
        script = []
        for id_, line in lines:
            for old, new in self.substitutions.items():
                line = line.replace(old, new)
            self.names |= set(ASSIGNED.findall(line.strip()))
            script += [f"_doc_curl {id_}"] if id_ else []
            script.append(line)
        keep = f"{{ declare -p {' '.join(sorted(self.names))} 2>/dev/null || true; }} > {self.state}" if self.names else ""
        body = "\n".join([WRAPPER, f"DOC_LOG={self.log}", f"[ -f {self.state} ] && source {self.state}", *script, keep])
        done = subprocess.run(["bash", "-c", body], cwd=self.directory, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "TZ": "Asia/Shanghai"})  # the reader's terminal is in China
        assert done.returncode == 0, f"{where}: the commands stopped (exit {done.returncode}):\n{done.stderr}\n" + \
            "\n".join(script)

    def variables(self):
        text = self.state.read_text() if self.state.exists() else ""
        return {name: value for name, value in re.findall(r'^declare -\S* (\w+)="(.*)"$', text, re.M)}

    def answer(self, id_):
        """(exit statuses, HTTP status, body) of the curl at `id_`, or None if it never ran."""
        rc = self.log / f"{id_}.rc"
        if not rc.exists():
            return None
        statuses = re.findall(r"^HTTP/\S+ (\d{3})", (self.log / f"{id_}.head").read_text(), re.M)
        text = (self.log / f"{id_}.body").read_text()
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        return [int(n) for n in rc.read_text().split()], int(statuses[-1]) if statuses else None, body


# --- the console steps a page asks a person to take ------------------------------------

class Console:
    """The console over HTTP, signed in as one of the demo's staff accounts."""

    def __init__(self, base_url, username, password):
        self.base_url, self.session = base_url, requests.Session()
        self.post("/console/login", {"username": username, "password": password}, csrf_from="/console/login")

    def get(self, path):
        answer = self.session.get(self.base_url + path, headers={"Accept": "text/html"}, timeout=30)
        assert answer.status_code == 200, (path, answer.status_code)
        return answer.text

    def post(self, path, data, csrf_from):
        token = re.search(r'name="csrf_token" value="([^"]+)"', self.get(csrf_from)).group(1)
        answer = self.session.post(self.base_url + path, data={**data, "csrf_token": token},
                                   headers={"Accept": "text/html"}, timeout=30)
        assert answer.status_code == 200 and "error" not in _flashes(answer.text), (path, answer.status_code,
                                                                                    _flashes(answer.text))
        return answer.text


def _flashes(page):
    return re.findall(r'class="flash[^"]*\b(error)\b', page)


def ship_everything(demo, order_no):
    """订单 → 这笔订单：每行填满待发数量、承运商、运单号，点「登记发货」。"""
    console = demo.console("cangku")
    page = f"/console/orders/{order_no}"
    lines = dict(re.findall(r'name="(qty_\d+)"[^>]*value="(\d+)"', console.get(page)))
    assert lines, f"the page of order {order_no} offers no shipment form"
    console.post(f"{page}/ship", {**lines, "carrier": "顺丰速运", "tracking_no": "SF1234567890"}, csrf_from=page)


def confirm_the_transfer(demo, order_no):
    """财务 → 线下付款：打开付这笔订单的那一条，点「确认到账」。"""
    console = demo.console("caiwu")
    listing = console.get("/console/finance/offline")
    row = next(r for r in re.findall(r"<tr>.*?</tr>", listing, re.S) if f"订单 {order_no}" in r)
    page = "/console/finance/offline/" + re.search(r"/console/finance/offline/(\d+)", row).group(1)
    console.post(f"{page}/confirm", {"received": "", "note": ""}, csrf_from=page)


def approve_and_receive_the_return(demo, return_id):
    """业务员在退货单上点「同意退货」；仓库选入库仓库，按实收数量「确认收货入库」。"""
    page = f"/console/returns/{return_id}"
    demo.console("zhangwei").post(f"{page}/approve", {"reason": ""}, csrf_from=page)
    warehouse = demo.console("cangku")
    form = warehouse.get(page)
    warehouse_id = re.search(r'name="warehouse_id"[^>]*>.*?<option value="(\d+)"', form, re.S).group(1)
    lines = dict(re.findall(r'name="(qty_\d+)"[^>]*value="(\d+)"', form))
    warehouse.post(f"{page}/receive", {**lines, "warehouse_id": warehouse_id}, csrf_from=page)


def send_the_campaign(demo, title):
    """营销 → 客户群群发：打开这份草稿，点「立即发送」。"""
    console = demo.console("shichang")
    found = re.search(r'/console/campaigns/(\d+)">' + re.escape(title) + "<", console.get("/console/campaigns"))
    assert found, f"no campaign {title} in the list"
    page = f"/console/campaigns/{found.group(1)}"
    console.post(f"{page}/send", {}, csrf_from=page)


# (what the comment says, with the shell variable or name it is about) -> the step
CONSOLE_STEPS = [
    (r"仓库全部发货（订单 \$(\w+)(?:，承运商 顺丰速运，运单号 SF1234567890)?）", ship_everything, "variable"),
    (r"财务确认到账（订单 \$(\w+) 的转账）", confirm_the_transfer, "variable"),
    (r"业务员同意退货，仓库确认收货入库（退货单 \$(\w+)）", approve_and_receive_the_return, "variable"),
    (r"立即发送「(.+)」", send_the_campaign, "text"),
]


def take_console_step(demo, said, shell):
    for pattern, step, kind in CONSOLE_STEPS:
        found = re.fullmatch(pattern, said)
        if found:
            value = found.group(1)
            if kind == "variable":
                assert shell.get(value), f"“{said}”: ${value} is not set in the terminal ({sorted(shell)})"
                value = shell[value]
            return step(demo, value)
    raise AssertionError(f"no console step in this test for “# 管理后台：{said}”")


# --- what each page says the answers are ------------------------------------------------

def _ok(status):
    def check(code, body, shell):
        assert code == status, body
    return check


def _order_placed(code, body, shell):
    assert code == 201 and re.fullmatch(r"SO\d{12}", body["order_no"]) and body["status"] == "pending_approval", body


def _paid_in_full(code, body, shell):
    totals = body["totals"]
    assert code == 200 and totals["paid_fen"] == totals["total_fen"] > 0 and totals["due_fen"] == 0, body


def _standin_paid(code, body, shell):
    assert code == 200 and body["ok"] is True and body["transaction_id"], body


def _prepay(code, body, shell):
    assert code == 200 and body["out_trade_no"].endswith("P01"), body


def _upload(code, body, shell):
    assert code == 201 and isinstance(body["id"], int), body


def _offline_pending(code, body, shell):
    assert code == 201 and body["status"] == "pending", body


def _logged_in(code, body, shell):
    assert code == 200 and body["token"] and body["bound"] is False, body


def _bound(code, body, shell):
    assert code == 200 and body["dealer"]["code"] == "D001", body


def _code(code, body, shell):
    assert code == 200 and body["code"], body


def _products(code, body, shell):
    assert code == 200 and 0 < len(body["items"]) <= 5 and all("price_fen" in i for i in body["items"]), body


def _me(code, body, shell):
    assert code == 200 and body["dealer"]["name"] == "广州市天河区鑫达商贸有限公司", body


def _tapped(code, body, shell):
    assert code == 200 and body["message"], body


def _approved(code, body, shell):
    assert code == 200 and body["status"] == "approved", body


def _approved_then_tracked(code, body, shell):
    """demo.md reads $NO twice: approved after the card tap, then completed with the trail line
    the Kuaidi100 stand-in pushed for its waybill."""
    if body.get("status") == "approved":
        return
    lines = [line["context"] for sent in body["shipments"] for line in sent["tracking"]["events"]]
    assert code == 200 and body["status"] == "completed" and "快件派送中，派件员：王师傅" in lines, body


def _kuaidi100_pushed(code, body, shell):
    assert code == 200 and body["ok"] is True, body


def _received(code, body, shell):
    assert code == 200 and body["status"] == "completed", body


def _order_due(code, body, shell):
    totals = body["totals"]
    assert code == 200 and totals["due_fen"] == totals["total_fen"] > 0 and totals["paid_fen"] == 0, body


def _offline_confirmed(code, body, shell):
    (paid,) = [item for item in body["items"] if item["order_no"] == shell["ONO"]]
    assert code == 200 and paid["status"] == "confirmed" and paid["received_fen"] == paid["amount_fen"], body


def _account(code, body, shell):
    assert code == 200 and {"receivable_fen", "prepaid_fen", "rebate_fen"} <= set(body["accounts"]), body
    assert {"limit_fen", "used_fen", "available_fen"} <= set(body["credit"]), body


def _receivable_ledger(code, body, shell):
    assert code == 200 and body["items"] and {i["account"] for i in body["items"]} == {"receivable"}, body


def _return_requested(code, body, shell):
    assert code == 201 and body["status"] == "pending", body


def _refunding(code, body, shell):
    assert code == 200 and body["status"] == "received" and body["refund"]["status"] == "refunding", body


def _refund_asked(code, body, shell):
    assert code == 200 and body[-1]["status"] == "PROCESSING" and body[-1]["out_refund_no"].startswith("RT"), body


def _refund_settled(code, body, shell):
    assert code == 200 and body["ok"] is True, body


def _refunded(code, body, shell):
    assert code == 200 and body["refund"]["status"] == "refunded", body


def _rebates(code, body, shell):
    history = body["history"]
    assert code == 200 and body["balance_fen"] > 0 and "next_tier" in body["progress"], body
    assert "approved" in {d["status"] for d in history["documents"]} and history["movements"], body


def _listed(code, body, shell):
    assert code == 200 and body["items"], body


def _statement(code, body, shell):
    assert code == 200 and {a["account"] for a in body["accounts"]} >= {"receivable", "prepaid", "rebate"}, body


def _item(code, body, shell):
    assert code == 200 and body["id"], body


def _group_tasks(code, body, shell):
    assert code == 200 and body and all(task["sender"] for task in body), body


WALK_THROUGH = {
    "POST http://127.0.0.1:5001/_standin/wx/login": _code,
    "POST $API/auth/login": _logged_in,
    "POST $API/auth/bind": _bound,
    "GET $API/products?page_size=5": _products,
    "POST $API/checkout/preview": _ok(200),
    "POST $API/orders": _order_placed,
}
EXPECTED = {
    "README.md": WALK_THROUGH,
    "docs/demo.md": {
        **WALK_THROUGH,
        "POST $S/_standin/wx/login": _code,
        "GET $API/me": _me,
        "POST $S/_standin/wecom/tap": _tapped,
        "GET $API/orders/$NO": _approved_then_tracked,
        "POST $S/_standin/kuaidi100/push": _kuaidi100_pushed,
        "POST $API/orders/$NO/confirm-receipt": _received,
        "POST $API/orders/$WNO/pay": _prepay,
        "POST $S/_standin/pay/$OTN/pay": _standin_paid,
        "GET $API/orders/$WNO": _paid_in_full,
        "GET $API/orders/$ONO": _order_due,
        "POST $API/uploads": _upload,
        "POST $API/payments/offline": _offline_pending,
        "GET $API/payments/offline": _offline_confirmed,
        "GET $API/account": _account,
        "POST $API/orders/$NO/returns": _return_requested,
        "GET $API/returns/$RID": _refunded,
        "GET $API/rebates": _rebates,
        "GET $API/statements": _listed,
        "GET $API/statements/$SID": _statement,
        "POST $API/statements/$SID/confirm": _ok(200),
        "GET $API/policies": _listed,
        "GET $API/policies/$PID": _item,
        "POST $API/policies/$PID/ack": _ok(200),
        "GET $API/materials": _listed,
        "GET $API/materials/$MID": _item,
        "POST $API/materials/$MID/share": _ok(200),
        "GET $S/_standin/wecom/groupmsg": _group_tasks,
    },
    "docs/dev/standin.md": {
        "POST $S/_standin/wx/login": _code,
        "POST $S/_standin/kuaidi100/push": _kuaidi100_pushed,
        "POST $S/_standin/wecom/say": _tapped,
    },
    "docs/integration/wechatpay.md": {
        "POST $API/orders": _order_placed,
        "POST $API/orders/$PNO/pay": _prepay,
        "POST http://127.0.0.1:5001/_standin/pay/$OTN/pay": _standin_paid,
        "GET $API/account": _account,
        "GET $API/account/ledger?account=receivable": _receivable_ledger,
    },
    "docs/staff/finance/returns.md": {
        "POST $S/_standin/wecom/tap": _tapped,
        "POST $API/orders/$WNO/confirm-receipt": _received,
        "POST $API/orders/$WNO/returns": _return_requested,
        "GET $API/returns/$WRID": [_refunding, _refunded],
        "GET $S/_standin/pay/refunds": _refund_asked,
        "POST $S/_standin/pay/refunds/$ORN/settle?status=SUCCESS": _refund_settled,
    },
    "docs/staff/finance/offline.md": {
        "POST $API/uploads": _upload,
        "POST $API/payments/offline": _offline_pending,
    },
}


# --- the demo, as `make demo` serves it ---------------------------------------------------

class Demo:
    def __init__(self, api, standin, seed_output):
        self.api, self.standin, self.seed_output = api, standin, seed_output
        self._consoles = {}

    def invite(self, dealer, role):
        row = next(line for line in self.seed_output.splitlines() if line.split()[:1] == [dealer] and role in line)
        return row.split()[-1]

    def console(self, username):
        """Signed in once with the one-time password `demo seed` printed for `username`."""
        if username not in self._consoles:
            row = next(line for line in self.seed_output.splitlines() if line.split()[:1] == [username])
            self._consoles[username] = Console(self.api, username, row.split()[-1])
        return self._consoles[username]


@pytest.fixture(scope="module")
def demo(tmp_path_factory, _sqlite_template):
    with served_demo(tmp_path_factory.mktemp("docs-curls"), _sqlite_template) as (api, standin, seed_output):
        yield Demo(api, standin, seed_output)


def test_the_extractor_sees_every_curl_in_the_docs():
    everything = sum(len(CURL.findall(page.read_text())) for page in pages())
    in_blocks = doc_curls()
    assert len(in_blocks) > 40
    assert curls_in_prose_everywhere() == [], "a curl outside a fenced shell block is not run by any test"
    assert len(in_blocks) == everything, "a curl in a fenced block the terminal does not run"
    continued = [c for c in in_blocks if c[0] == "docs/staff/finance/offline.md" and "payments/offline" in c[2]]
    assert continued and "ICBC2026112700012" in continued[0][2], "a command continued with \\ is one command"


def curls_in_prose_everywhere():
    return [line for page in pages() for line in curls_in_prose(page)]


def test_every_curl_in_the_docs_runs_against_the_demo_and_answers_as_the_page_says(demo, tmp_path):
    substitutions = {API_ADDRESS: demo.api, STANDIN_ADDRESS: demo.standin}
    terminal = Terminal(tmp_path, substitutions)
    invites = {"README.md": demo.invite("D001", "采购员"), "docs/demo.md": demo.invite("D001", "负责人")}
    for page in pages():
        name = name_of(page)
        terminal.substitutions = {**substitutions, "<邀请码>": invites.get(name, "<邀请码>")}
        for start, lines in blocks(page):
            if not runnable(lines):
                continue
            stretch = []
            for i, line in enumerate(lines):
                step = CONSOLE.match(line.strip())
                if step:
                    terminal.run(stretch, f"{name}:{start}")
                    stretch = []
                    take_console_step(demo, step.group(1), terminal.variables())
                elif line.strip():
                    stretch.append((curl_id(page, start, i) if CURL.search(line) else None, line))
            terminal.run(stretch, f"{name}:{start}")

    problems, seen, shell = [], Counter(), terminal.variables()  # the terminal's variables at the end
    for name, id_, command in doc_curls():
        answer = terminal.answer(id_)
        check = EXPECTED.get(name, {}).get(signature(command))
        if isinstance(check, list):  # the same request again later on the page: its own answer each time
            seen[name, signature(command)] += 1
            check = check[seen[name, signature(command)] - 1] if seen[name, signature(command)] <= len(check) else None
        if answer is None:
            problems.append(f"{id_} did not run: {command}")
        elif check is None:
            problems.append(f"{id_} has no expectation in EXPECTED[{name!r}][{signature(command)!r}]"
                            f" (it answered {answer[1]}: {str(answer[2])[:200]})")
        else:
            exits, status, body = answer
            if exits != [0]:
                problems.append(f"{id_} curl exited {exits}: {command}")
                continue
            try:
                check(status, body, shell)
            except (AssertionError, KeyError, TypeError, IndexError) as exc:
                problems.append(f"{id_} {signature(command)} answered {status}: {exc!r}"[:600])
    assert not problems, "\n".join(problems)
