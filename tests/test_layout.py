"""The product does not depend on the development tools: nothing under app/, bots/, callbacks/,
console/, miniprogram_api/ or wsgi.py imports devtools at module level (only app/cli.py may, inside the
function that registers `flask demo`), and without devtools/ the app builds, minus that command.
The `devtools` contract in .importlinter states the same for lint-imports; this test also
proves the app builds without the package."""
import ast
import sys
from pathlib import Path

from tests.helpers import top_level_imports

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("app", "bots", "callbacks", "console", "miniprogram_api", "wsgi.py")
MAY_IMPORT_IN_FUNCTIONS = {"app/cli.py"}


def devtools_imports(tree):
    """[(line, inside a function)] for each import of devtools in `tree`."""
    return [(line, in_function) for package, line, in_function in top_level_imports(tree) if package == "devtools"]


def test_the_guard_tells_module_level_from_function_level_imports():
    source = "import devtools\ntry:\n    from devtools.x import y\nexcept ImportError:\n    pass\n" \
             "def f():\n    import devtools.standin\nclass C:\n    import devtools.demo\n"
    assert devtools_imports(ast.parse(source)) == [(1, False), (3, False), (7, True), (9, False)]


def test_the_product_does_not_import_devtools_at_module_level():
    files = [path for name in PRODUCT
             for path in ([ROOT / name] if name.endswith(".py") else sorted((ROOT / name).rglob("*.py")))]
    offending = [
        f"{path.relative_to(ROOT).as_posix()}:{line}"
        for path in files
        for line, in_function in devtools_imports(ast.parse(path.read_text(encoding="utf-8")))
        if not (in_function and path.relative_to(ROOT).as_posix() in MAY_IMPORT_IN_FUNCTIONS)
    ]
    assert len(files) > 50 and offending == []


def test_without_devtools_the_app_builds_and_has_no_demo_command(monkeypatch, tmp_path):
    class NotDeployed:
        """A finder that knows no devtools, as on a server where only the product is deployed."""

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "devtools":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    for name in [name for name in sys.modules if name.split(".")[0] == "devtools"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [NotDeployed(), *sys.meta_path])
    from app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/app.db"})

    assert "demo" not in app.cli.commands and "dealers" in app.cli.commands
    assert not any(name.split(".")[0] == "devtools" for name in sys.modules)


def import_cycles(imports):
    """Each set of modules that import one another round in a circle ({module: imported})."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(module):  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in imports.get(module, ()):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component, member = set(), None
            while member != module:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
            if len(component) > 1:
                cycles.append(component)

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return cycles


def test_the_cycle_finder_finds_a_circle_and_nothing_else():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_two_modules_import_each_other_round_in_a_circle():
    """Function-level imports count too: a lazy import that closes a circle hides a seam in
    the wrong place. `app` itself (create_app, the composition root) wires everything."""
    import grimp

    graph = grimp.build_graph("app", "bots", "callbacks", "console", "miniprogram_api", "devtools")
    imports = {module: graph.find_modules_directly_imported_by(module) - {"app"}
               for module in graph.modules if module != "app"}
    assert len(imports) > 100 and import_cycles(imports) == []
