"""Small helpers the API and console tests share."""
import contextlib
import os
import re
import uuid

from sqlalchemy import func, select

from app.extensions import db
from app.funds.models import CreditAccount
from app.inventory.models import Stock

MP = "/api/mp/v1"

# Console tests: staff made in tests use this password; pages are asked for as a browser would.
PASSWORD = "correct-horse-9"

# CI runs the whole suite three times: at today's clock, then at two awkward dates. The
# generated tests (Hypothesis, schemathesis) are derandomized, so the date runs would draw the
# very same examples again; with DINGHUO_TEST_EXAMPLES=fewer (.ci/run sets it for those two)
# each draws a fifth of them, which still walks every rule at that date.
FEWER_EXAMPLES = os.environ.get("DINGHUO_TEST_EXAMPLES") == "fewer"


def examples(count):
    """How many examples a generated test draws: `count`, or a fifth of it in a date run."""
    return max(5, count // 5) if FEWER_EXAMPLES else count
HTML = {"Accept": "text/html"}


def csrf(client, path="/console/login"):
    """The CSRF token from a console page's form (the session's token)."""
    page = client.get(path, headers=HTML).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def console_login(client, username, password=PASSWORD):
    return client.post("/console/login", data={"username": username, "password": password,
                                                "csrf_token": csrf(client)}, headers=HTML)


def new_key():
    return uuid.uuid4().hex


def submit(client, headers, lines, key=None, **extra):
    return client.post(
        f"{MP}/orders", headers={**headers, "Idempotency-Key": key or new_key()}, json={"lines": lines, **extra}
    )


def available(sku):
    db.session.expire_all()
    row = db.session.execute(
        select(func.sum(Stock.on_hand - Stock.reserved), func.sum(Stock.reserved)).where(Stock.sku_id == sku.id)
    ).one()
    return row[0]


def reserved(sku):
    db.session.expire_all()
    return db.session.execute(select(func.sum(Stock.reserved)).where(Stock.sku_id == sku.id)).scalar_one()


def credit(dealer):
    db.session.expire_all()
    account = db.session.get(CreditAccount, dealer.id)
    return {"limit": account.credit_limit_fen, "held": account.held_fen, "receivable": account.receivable_fen}


@contextlib.contextmanager
def subscribed(app, event, handler):
    """`handler` subscribes to the domain event `event` for the duration of the block."""
    from app.kernel import events

    events.subscribe(app, event, handler)
    try:
        yield
    finally:
        events.unsubscribe(app, event, handler)


def top_level_imports(tree):
    """[(top-level package, line, inside a function)] for each absolute import in `tree`
    (an `ast` module): what the layout tests check the product's files against."""
    import ast

    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            names = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0:
                names = [child.module or ""]
            found.extend((name.split(".")[0], child.lineno, in_function) for name in names)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found
