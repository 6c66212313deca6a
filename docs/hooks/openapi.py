"""MkDocs hook: the mini-program API reference, generated from the app's OpenAPI document.

The app builds the document from the same marshmallow schemas that validate requests
(miniprogram_api/__init__.py) and serves it at /api/mp/v1/openapi.json. This hook asks a
throw-away app (in-memory SQLite, never touched) for that document at build time and adds
two files to the site: integration/api-reference.md (rendered below) and
integration/openapi.json (the document itself). Nothing here is written by hand, so the
page cannot drift from the code.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
PAGE = "integration/api-reference.md"
SPEC = "integration/openapi.json"
METHODS = ("get", "post", "put", "patch", "delete")


def load_spec() -> dict:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    prefix = app.config["OPENAPI_URL_PREFIX"].rstrip("/")
    path = f"{prefix}/{app.config['OPENAPI_JSON_PATH']}"
    logging.getLogger("dinghuo.request").setLevel(logging.WARNING)
    logging.getLogger("jieba").setLevel(logging.INFO)
    response = app.test_client().get(path)
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}")
    return response.get_json()


def cell(text) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ")


def schema_name(schema: dict | None) -> str:
    if not schema:
        return ""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#schema-{name.lower()})"
    if schema.get("type") == "array":
        return f"{schema_name(schema.get('items'))} 的数组"
    return f"`{schema.get('type', 'object')}`"


def body_schema(content: dict | None) -> str:
    if not content:
        return ""
    parts = []
    for media, spec in content.items():
        parts.append(f"{schema_name(spec.get('schema'))}（`{media}`）")
    return "、".join(parts)


def render(spec: dict) -> str:
    info = spec.get("info", {})
    out = [
        "# 接口参考（由 OpenAPI 文档生成）",
        "",
        f"本页在构建文档时由应用自己的 OpenAPI 文档生成（{cell(info.get('title'))} {cell(info.get('version'))}，"
        f"OpenAPI {spec.get('openapi')}），与代码里的 schema 是同一份，不手工维护。运行中的服务在 "
        "`/api/mp/v1/openapi.json` 提供同一份文档；[这里是构建时的副本](openapi.json)，可导入 Postman、Apifox 等工具。"
        "字段含义与约定（金额单位、错误格式、数据隔离）见[小程序 API 约定](mp-api.md)。",
        "",
    ]
    by_tag: dict[str, list] = {}
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                op = item[method]
                tag = (op.get("tags") or ["其他"])[0]
                by_tag.setdefault(tag, []).append((path, method, op, item.get("parameters", [])))
    tag_text = {t["name"]: t.get("description", "") for t in spec.get("tags", [])}
    for tag, ops in by_tag.items():
        out += [f"## {tag}", ""]
        if tag_text.get(tag):
            out += [tag_text[tag], ""]
        for path, method, op, shared in ops:
            out += [f"### `{method.upper()} {path}`", ""]
            if op.get("summary"):
                out += [op["summary"], ""]
            if op.get("description"):
                out += [op["description"], ""]
            if op.get("security") is not None:
                needs = [name for req in op["security"] for name in req]
                out += [f"认证：{'、'.join(needs) if needs else '不需要'}", ""]
            params = shared + op.get("parameters", [])
            if params:
                out += ["| 参数 | 位置 | 必填 | 类型 | 说明 |", "| --- | --- | --- | --- | --- |"]
                for p in params:
                    out.append(
                        f"| `{p.get('name')}` | {p.get('in')} | {'是' if p.get('required') else '否'} | "
                        f"{schema_name(p.get('schema'))} | {cell(p.get('description'))} |"
                    )
                out.append("")
            if "requestBody" in op:
                out += [f"请求体：{body_schema(op['requestBody'].get('content'))}", ""]
            responses = op.get("responses", {})
            if responses:
                out += ["| 状态码 | 说明 | 内容 |", "| --- | --- | --- |"]
                for code, resp in sorted(responses.items(), key=lambda item: (item[0] == "default", item[0])):
                    if "$ref" in resp:
                        name = resp["$ref"].rsplit("/", 1)[-1]
                        resp = spec.get("components", {}).get("responses", {}).get(name, {})
                    out.append(f"| {code} | {cell(resp.get('description'))} | {body_schema(resp.get('content'))} |")
                out.append("")
    schemas = spec.get("components", {}).get("schemas", {})
    if schemas:
        out += ["## 数据结构", ""]
        for name, schema in schemas.items():
            out += [f'### `{name}` {{ #schema-{name.lower()} }}', ""]
            required = set(schema.get("required", []))
            props = schema.get("properties", {})
            if props:
                out += ["| 字段 | 类型 | 必填 | 说明 |", "| --- | --- | --- | --- |"]
                for field, fs in props.items():
                    kind = schema_name(fs) if ("$ref" in fs or fs.get("type") == "array") else f"`{fs.get('type', '')}`"
                    if "enum" in fs:
                        kind += "：" + "、".join(f"`{v}`" for v in fs["enum"])
                    out.append(
                        f"| `{field}` | {kind} | {'是' if field in required else '否'} | {cell(fs.get('description'))} |"
                    )
                out.append("")
    return "\n".join(out) + "\n"


def on_files(files, config):
    spec = load_spec()
    files.append(File.generated(config, PAGE, content=render(spec)))
    files.append(File.generated(config, SPEC, content=json.dumps(spec, ensure_ascii=False, indent=2)))
    return files
