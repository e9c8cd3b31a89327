"""kms_ws's imports keep the layer order of docs/architecture.md and form no cycle.

Every `import` and `from ... import` anywhere in a module counts, in function bodies too
(an import placed inside a function still ties the two modules), relative imports
resolved. An arrow between layers must point down the order and be one the table allows;
the known exceptions are listed by name below and may only shrink."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "kms_ws"

# The layers, lowest first: a module belongs to the layer of its longest prefix.
ORDER = ("base", "domain", "crypto", "xmlns", "security", "store", "config", "audit",
         "service", "codec", "wsman", "soap", "http", "client", "composition")
LAYER_OF = {
    "kms_ws": "base", "kms_ws.durable": "base", "kms_ws.logs": "base",
    "kms_ws.lifetime": "base", "kms_ws.resources": "base",
    "kms_ws.domain": "domain",
    "kms_ws.crypto": "crypto",
    "kms_ws.xmlns": "xmlns",
    "kms_ws.security": "security",
    "kms_ws.store": "store",
    "kms_ws.config": "config",
    "kms_ws.audit": "audit",
    "kms_ws.service": "service",
    "kms_ws.codec": "codec",
    "kms_ws.wsman": "wsman",
    "kms_ws.soap": "soap",
    "kms_ws.http_worker": "http",
    "kms_ws.client": "client",
    "kms_ws.app": "composition", "kms_ws.server": "composition",
    "kms_ws.cli": "composition", "kms_ws.cli_admin": "composition",
    "kms_ws.backup": "composition",
}
# The layers each layer may import (besides its own).
ALLOWED = {
    "base": set(),
    "domain": set(),
    "crypto": {"domain", "base"},
    "xmlns": set(),
    "security": {"crypto", "domain", "xmlns", "base"},
    "store": {"domain", "base"},
    "config": {"store", "security", "base"},
    "audit": {"store", "crypto", "domain", "base"},
    "service": {"audit", "security", "crypto", "domain", "base"},
    "codec": {"service", "security", "domain", "xmlns", "base"},
    "wsman": {"codec", "service", "audit", "config", "security", "crypto", "domain", "xmlns",
              "base"},
    "soap": {"wsman", "codec", "service", "security", "domain", "xmlns", "base"},
    "http": {"security", "base"},
    "client": {"soap", "wsman", "codec", "security", "crypto", "domain", "xmlns", "base"},
    "composition": set(ORDER) - {"composition"},
}
# Of the security layer, the service takes only what is not wire format: certificates, the
# settings and the proofs it checks (security.proofs: verification keys, a PEP's proof
# over its canonical bytes). The parser, the XML signatures, the PEP proof's XML, HTTP
# authentication and forwarded headers belong to the transport layers (codec, wsman,
# soap, http, client).
WIRE_SECURITY = {"kms_ws.security.xml", "kms_ws.security.wssecurity",
                 "kms_ws.security.signature_text", "kms_ws.security.pep_proof",
                 "kms_ws.security.http_auth", "kms_ws.security.forwarded"}
NO_WIRE_SECURITY = {"service"}

# Known exceptions: arrows that break the order today, each fixed by a step of issue 14
# ("One clean seam between service and store"). Remove an entry when its arrow goes; the
# test fails on an entry that no longer matches an import, so the list only shrinks.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported kms_ws module, line) for every import statement anywhere in the module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                assert node.level <= len(parts), f"{path}:{node.lineno} imports above kms_ws"
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import kms_ws.x.y` names a module
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target, node.lineno


def graph(root: Path = PACKAGE) -> dict[str, dict[str, int]]:
    known = modules(root)
    edges: dict[str, dict[str, int]] = {m: {} for m in known}
    for name, path in known.items():
        for target, line in imports(name, path, known):
            edges[name].setdefault(target, line)
    return edges


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer(module: str) -> str | None:
    while module:
        if module in LAYER_OF:
            return LAYER_OF[module]
        module = module.rpartition(".")[0]
    return None


def breaches(edges: dict[str, dict[str, int]]) -> list[tuple[str, str, int]]:
    out = []
    for source, targets in sorted(edges.items()):
        for target, line in sorted(targets.items()):
            a, b = layer(source), layer(target)
            if a != b and (b not in ALLOWED[a]  # type: ignore[index]
                           or a in NO_WIRE_SECURITY and target in WIRE_SECURITY):
                out.append((source, target, line))
    return out


def test_every_module_has_a_layer() -> None:
    missing = sorted(m for m in modules() if layer(m) is None)
    assert not missing, f"place these modules in a layer (and in docs/architecture.md): {missing}"


def test_the_allowed_arrows_point_down_the_order() -> None:
    assert set(ALLOWED) == set(ORDER) == set(LAYER_OF.values())
    assert all(layer(m) == "security" for m in WIRE_SECURITY)
    up = [(a, b) for a, allowed in ALLOWED.items() for b in allowed
          if ORDER.index(b) >= ORDER.index(a)]
    assert not up, f"the table allows arrows up the order: {up}"


def test_no_import_cycle() -> None:
    edges = graph()
    found = cycles(edges)
    described = ["\n  ".join(f"{a} -> {b} (line {edges[a][b]})" for a in c for b in c
                             if b in edges[a]) for c in found]
    assert not found, "import cycles in kms_ws:\n  " + "\n\n  ".join(described)


def test_imports_keep_the_layer_order() -> None:
    found = breaches(graph())
    unexpected = [f"{s} -> {t} (line {n}; {layer(s)} may not import {layer(t)})"
                  for s, t, n in found if (s, t) not in KNOWN_EXCEPTIONS]
    assert not unexpected, "arrows that break docs/architecture.md's layers:\n  " + \
        "\n  ".join(unexpected)


def test_known_exceptions_only_shrink() -> None:
    found = {(s, t) for s, t, _ in breaches(graph())}
    stale = sorted(set(KNOWN_EXCEPTIONS) - found)
    assert not stale, f"these arrows are gone: remove them from KNOWN_EXCEPTIONS: {stale}"


def test_the_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The check itself: a cycle hidden by an import inside a function, through a relative
    import, is found, and so is the arrow it draws."""
    pkg = tmp_path / "kms_ws"
    (pkg / "store").mkdir(parents=True)
    (pkg / "service").mkdir()
    for init in (pkg, pkg / "store", pkg / "service"):
        (init / "__init__.py").write_text("")
    (pkg / "service" / "keys.py").write_text("from ..store import rows\n")
    (pkg / "store" / "rows.py").write_text(
        "def load():\n    from ..service.keys import KEYS\n    return KEYS\n")
    edges = graph(pkg)
    assert edges["kms_ws.store.rows"] == {"kms_ws.service.keys": 2}
    assert cycles(edges) == [["kms_ws.service.keys", "kms_ws.store.rows"]]
    assert ("kms_ws.store.rows", "kms_ws.service.keys", 2) in breaches(edges)
