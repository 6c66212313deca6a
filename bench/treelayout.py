"""Which Dinghuo tree the bench scripts drive, and where they find the app code they call.

The bench scripts of the *current* tree also run against another tree's app (`bench/run.sh
--against REF` checks REF out into a temporary worktree): the load, the parsing and the report
stay the same code, only the app under test changes. The tree under test is
`$BENCH_APP_ROOT` (set by run.py), else the tree these scripts live in.

Helpers that call app code in-process (actors.py, notify.py, notify_standin.py) import it
through `load()`, which tries each known location of a name in turn, newest layout first:
e.g. the WeChat/WeCom stand-in is `devtools.standin` since the devtools split and was
`app.integrations.standin` before it. When code moves again, add its new place in front.
"""
import importlib
import os
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))

# name -> "module:attribute" (or "module") candidates, newest layout first
LOCATIONS = {
    "standin": ("devtools.standin", "app.integrations.standin"),
    "create_app": ("app:create_app",),
    "db": ("app.extensions:db",),
    "utcnow": ("app.kernel.clock:utcnow", "app.models_base:utcnow"),
    "Outbox": ("app.notify.models:Outbox",),
    "enqueue_rows": ("app.notify.delivery:enqueue_rows",),
    "list_products": ("app.catalog.service:list_products",),
    "Dealer": ("app.dealers.models:Dealer",),
    "DealerUser": ("app.dealers.models:DealerUser",),
    "issue_token": ("app.dealers.identity:issue_token", "app.dealers.service:issue_token"),
}


def app_root():
    return os.path.abspath(os.environ.get("BENCH_APP_ROOT") or os.path.dirname(BENCH_DIR))


def use_app_root():
    """Put the tree under test first on sys.path (and no other Dinghuo tree before it)."""
    root = app_root()
    own = os.path.dirname(BENCH_DIR)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") not in (root, own)]
    sys.path.insert(0, root)
    return root


def _check_tree(module):
    """An app module imported from another tree would measure the wrong code: refuse."""
    path = os.path.abspath(getattr(module, "__file__", None) or "")
    top = module.__name__.split(".")[0]
    if top in ("app", "devtools") and not path.startswith(app_root() + os.sep):
        raise SystemExit(f"bench: {module.__name__} was imported from {path}, not from the tree under test "
                         f"{app_root()} (is PYTHONPATH set?)")


def load(name):
    """The first importable candidate of LOCATIONS[name]; a clear error listing them otherwise."""
    tried = []
    for spec in LOCATIONS[name]:
        mod_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            # only "that module is not there" moves on; an import error inside it is real
            if exc.name and (mod_name == exc.name or mod_name.startswith(exc.name + ".")):
                tried.append(spec)
                continue
            raise
        _check_tree(module)
        if not attr:
            return module
        if hasattr(module, attr):
            return getattr(module, attr)
        tried.append(spec)
    raise SystemExit(f"bench: cannot find {name} in the tree under test {app_root()}; tried {', '.join(tried)}. "
                     f"If it moved, add its new place to LOCATIONS in bench/treelayout.py.")
