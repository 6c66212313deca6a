"""The docs site against the code it describes.

`make docs` (mkdocs build --strict, run by .ci/run) fails on a broken link or anchor; the API
reference page is generated from the OpenAPI document, so it cannot drift. What is still
written by hand is the table of what dealers can call in docs/dealers.md: every endpoint it
names must be one the app serves, and every endpoint the app serves must be in it.
"""

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
PREFIX = "/api/mp/v1"
ENDPOINT = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^\s`?{（]*)")


def normalise(path):
    return re.sub(r"[<{][^>}]+[>}]", "{}", path.rstrip("/"))


def documented_endpoints():
    rows = [line for line in (DOCS / "dealers.md").read_text().splitlines() if line.startswith("| `")]
    found = set()
    for row in rows:
        first_cell = row.split(" | ")[0]
        found |= {(method, normalise(path)) for method, path in ENDPOINT.findall(first_cell)}
    return found


def served_endpoints(client):
    spec = client.get(f"{PREFIX}/openapi.json").get_json()
    return {
        (method.upper(), normalise(path[len(PREFIX):]))
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }


def test_the_dealer_endpoint_table_matches_the_openapi_document(client):
    documented, served = documented_endpoints(), served_endpoints(client)
    assert len(documented) > 30
    assert sorted(documented - served) == [], "in docs/dealers.md but not served"
    assert sorted(served - documented) == [], "served but missing from docs/dealers.md"


def test_every_docs_page_is_in_the_nav():
    nav = (DOCS.parent / "mkdocs.yml").read_text()
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "hooks" not in p.parts}
    assert sorted(page for page in pages if page not in nav) == []


def test_the_readme_links_to_files_that_exist():
    root = DOCS.parent
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", (root / "README.md").read_text())
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert len(local) > 20
    assert sorted(t for t in local if not (root / t).exists()) == []
