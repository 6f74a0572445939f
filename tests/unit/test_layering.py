"""The package's layering, checked from the import graph (``ast`` only: nothing is imported).

A request reads top to bottom: api -> expr/model -> db -> storage, and the sans-I/O cores under
``quorumdb/core`` are driven by ``runtime`` and ``sim`` but know neither. This module reads
every ``quorumdb/**/*.py`` and fails on an import that points the wrong way. Every import
counts, wherever it stands (module level, inside a function, under ``TYPE_CHECKING``): a lazy
or type-only import still couples the two layers.

The rules are data (``RULES``). A known violation is listed in ``KNOWN_VIOLATIONS`` with the
reason; it is left out of its rule's test and gets its own ``xfail(strict=True)`` case, which
starts failing (XPASS) the day the import is removed, so the entry is deleted with the fix.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "quorumdb"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    name: str
    # Paths relative to the repo root; a directory covers everything below it.
    applies_to: tuple[str, ...]
    forbidden: tuple[str, ...]  # module prefixes, matched on whole dotted components
    exempt: tuple[str, ...] = ()


CLUSTER_CORES = (
    "quorumdb/cluster/placement.py",
    "quorumdb/cluster/metadata.py",
    "quorumdb/cluster/statemachine.py",
)

RULES: tuple[Rule, ...] = (
    Rule(
        name="core imports no driver, shell, data plane or storage",
        applies_to=("quorumdb/core",),
        forbidden=(
            "quorumdb.runtime",
            "quorumdb.sim",
            "quorumdb.api",
            "quorumdb.db",
            "quorumdb.storage",
            # I/O, wall clock and threads come from the drivers, never from a core.
            "asyncio",
            "time",
            "socket",
            "selectors",
            "threading",
            "datetime",
            "secrets",
        ),
    ),
    Rule(
        name="model, expr and partiql are pure values and languages",
        applies_to=("quorumdb/model", "quorumdb/expr", "quorumdb/partiql"),
        forbidden=(
            "quorumdb.api",
            "quorumdb.db",
            "quorumdb.storage",
            "quorumdb.runtime",
            "quorumdb.sim",
            "quorumdb.core",
        ),
    ),
    Rule(
        name="storage knows only bytes and keys",
        applies_to=("quorumdb/storage",),
        forbidden=(
            "quorumdb.api",
            "quorumdb.db",
            "quorumdb.expr",
            "quorumdb.runtime",
            "quorumdb.sim",
        ),
    ),
    Rule(
        name="db (the data plane) does not know the HTTP shell",
        applies_to=("quorumdb/db",),
        forbidden=("quorumdb.api",),
    ),
    Rule(
        name="sim drives cores, never the asyncio runtime or the HTTP shell",
        applies_to=("quorumdb/sim",),
        forbidden=("quorumdb.api", "quorumdb.runtime"),
    ),
    Rule(
        # Not spelled out in STYLE.md, but it is the mirror of the rule above: the two drivers
        # share cores, not each other.
        name="runtime drives cores, never the simulator or the HTTP shell",
        applies_to=("quorumdb/runtime",),
        forbidden=("quorumdb.sim", "quorumdb.api"),
    ),
    Rule(
        name="cluster cores (placement, metadata, state machines) are pure",
        applies_to=CLUSTER_CORES,
        forbidden=(
            "quorumdb.runtime",
            "quorumdb.sim",
            "quorumdb.api",
            "quorumdb.db",
            "quorumdb.storage",
            "quorumdb.cluster.node",
            "quorumdb.cluster.rpc",
            "quorumdb.cluster.serve",
            "quorumdb.cluster.launcher",
            "asyncio",
            "time",
            "socket",
            "selectors",
            "threading",
            "datetime",
            "secrets",
        ),
    ),
    Rule(
        name="the cluster runtime drives cores, never the simulator",
        applies_to=("quorumdb/cluster",),
        forbidden=("quorumdb.sim",),
    ),
    Rule(
        name="nothing below the HTTP shell imports it",
        applies_to=("quorumdb",),
        forbidden=("quorumdb.api",),
        # The shell itself and the entry points above it (a cluster node process serves HTTP).
        exempt=("quorumdb/api", "quorumdb/cli.py", "quorumdb/__main__.py", "quorumdb/cluster/serve.py"),
    ),
)

# (file, imported module) -> why it is still there. Each must have its own strict xfail.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {
}


# -- the import graph ---------------------------------------------------------------------------


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(path: Path) -> list[str]:
    name = _module_name(path).split(".")
    return name if path.name == "__init__.py" else name[:-1]


def _imports(path: Path, tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, dotted module) for every import in the file, relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(path)
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from quorumdb import api`` imports quorumdb.api; ``from x.y import Name`` is
            # x.y.Name, which still has x.y as its prefix.
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}" if alias.name != "*" else module
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (
                    isinstance(node.func, ast.Name)
                    and node.func.id in ("import_module", "__import__")
                )
            )
        ):
            yield node.lineno, node.args[0].value


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _covered(rel: str, prefixes: tuple[str, ...]) -> bool:
    return any(rel == p or rel.startswith(p + "/") for p in prefixes)


SOURCES: dict[str, ast.Module] = {
    _rel(p): ast.parse(p.read_text(encoding="utf-8"), filename=str(p))
    for p in sorted(PACKAGE.rglob("*.py"))
}


def _violations(rule: Rule) -> list[tuple[str, int, str, str]]:
    """(file, line, imported module, forbidden prefix) for every import that breaks the rule."""
    found = []
    for rel, tree in SOURCES.items():
        if not _covered(rel, rule.applies_to) or _covered(rel, rule.exempt):
            continue
        for line, module in _imports(ROOT / rel, tree):
            for prefix in rule.forbidden:
                if _matches(module, prefix):
                    found.append((rel, line, module, prefix))
    return found


def _is_known(rel: str, module: str) -> bool:
    return any(rel == f and _matches(module, m) for f, m in KNOWN_VIOLATIONS)


# -- the tests ----------------------------------------------------------------------------------


def test_the_package_is_found() -> None:
    assert "quorumdb/errors.py" in SOURCES
    assert any(rel.startswith("quorumdb/core/") for rel in SOURCES), "no core modules found"
    for rule in RULES:
        assert any(_covered(rel, rule.applies_to) for rel in SOURCES), rule.name


def test_the_import_scanner_resolves_relative_and_dynamic_imports() -> None:
    tree = ast.parse(
        "from . import a\nfrom ..b import c\nfrom quorumdb import api\nimport x.y\n"
        "def f():\n    importlib.import_module('quorumdb.sim.kv')\n"
    )
    got = [m for _, m in _imports(PACKAGE / "core" / "paxos" / "replica.py", tree)]
    assert got == [
        "quorumdb.core.paxos.a",
        "quorumdb.core.b.c",
        "quorumdb.api",
        "x.y",
        "quorumdb.sim.kv",
    ]


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_layering(rule: Rule) -> None:
    bad = [v for v in _violations(rule) if not _is_known(v[0], v[2])]
    assert not bad, "\n".join(f"{f}:{line} imports {m} (forbidden: {p})" for f, line, m, p in bad)


@pytest.mark.parametrize(
    ("rel", "module"),
    [
        pytest.param(rel, module, marks=pytest.mark.xfail(strict=True, reason=reason))
        for (rel, module), reason in KNOWN_VIOLATIONS.items()
    ],
    ids=[f"{rel} -> {module}" for rel, module in KNOWN_VIOLATIONS],
)
def test_known_violation_is_gone(rel: str, module: str) -> None:
    edges = [(line, m) for line, m in _imports(ROOT / rel, SOURCES[rel]) if _matches(m, module)]
    assert not edges, f"{rel} still imports {module} at lines {[line for line, _ in edges]}"


def test_every_known_violation_breaks_a_rule() -> None:
    # A stale entry would silently exempt a future import of the same module.
    broken = {(f, m) for rule in RULES for f, _, m, _ in _violations(rule)}
    for rel, module in KNOWN_VIOLATIONS:
        assert any(f == rel and _matches(m, module) for f, m in broken), (
            f"{rel} -> {module} is listed in KNOWN_VIOLATIONS but breaks no rule"
        )


# -- randomness in the cores --------------------------------------------------------------------


def _random_misuse(tree: ast.AST) -> list[tuple[int, str]]:
    """Uses of the ``random`` module other than naming the injected ``random.Random`` type.

    ``import random`` / ``from random import Random`` are allowed so a core can annotate the
    generator it is handed. Calling module-level functions (``random.random()``,
    ``random.randint``...), importing them, or building a generator of its own
    (``random.Random()``, ``Random()``, ``SystemRandom``) is not: randomness is injected.
    """
    bad = []
    random_aliases = set()
    random_type_aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "random":
                    random_aliases.add(alias.asname or "random")
        elif isinstance(node, ast.ImportFrom) and node.module == "random" and not node.level:
            for alias in node.names:
                if alias.name == "Random":
                    random_type_aliases.add(alias.asname or "Random")
                else:
                    bad.append((node.lineno, f"from random import {alias.name}"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in random_aliases
            and node.attr != "Random"
        ):
            bad.append((node.lineno, f"{node.value.id}.{node.attr}"))
        elif isinstance(node, ast.Call):
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in random_aliases
                and func.attr == "Random"
            ) or (isinstance(func, ast.Name) and func.id in random_type_aliases):
                bad.append((node.lineno, "constructs its own Random()"))
    return sorted(bad)


def test_random_misuse_detector() -> None:
    ok = ast.parse(
        "import random\nfrom random import Random\ndef f(rng: random.Random) -> Random: ..."
    )
    assert _random_misuse(ok) == []
    bad = ast.parse(
        "import random as r\nfrom random import randint\nx = r.random()\ny = r.Random(4)\n"
    )
    assert [what for _, what in _random_misuse(bad)] == [
        "from random import randint",
        "r.random",
        "constructs its own Random()",
    ]


@pytest.mark.parametrize(
    "rel", [rel for rel in SOURCES if rel.startswith("quorumdb/core/") or rel in CLUSTER_CORES]
)
def test_core_randomness_is_injected(rel: str) -> None:
    bad = _random_misuse(SOURCES[rel])
    assert not bad, "\n".join(f"{rel}:{line}: {what}" for line, what in bad)


# -- one translation boundary for errors --------------------------------------------------------

# Only the error tree spells DynamoDB's error JSON (the HTTP shell calls its ``body()``).
ERROR_JSON_MARKERS = ("__type", "com.amazonaws.dynamodb.v20120810#", "com.amazon.coral.")
ERROR_JSON_OWNERS = ("quorumdb/errors.py",)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _error_json(tree: ast.AST) -> list[tuple[int, str]]:
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in docs:
            value = node.value
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            if isinstance(text, str) and any(marker in text for marker in ERROR_JSON_MARKERS):
                found.append((node.lineno, text[:60]))
        elif isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name == "ERROR_PREFIX":
                found.append((node.lineno, "ERROR_PREFIX"))
        elif isinstance(node, ast.ImportFrom) and any(a.name == "ERROR_PREFIX" for a in node.names):
            found.append((node.lineno, "imports ERROR_PREFIX"))
    return sorted(found)


@pytest.mark.parametrize("rel", [rel for rel in SOURCES if not _covered(rel, ERROR_JSON_OWNERS)])
def test_only_api_and_errors_format_error_json(rel: str) -> None:
    bad = _error_json(SOURCES[rel])
    assert not bad, "\n".join(f"{rel}:{line}: {what!r}" for line, what in bad)


def test_error_json_detector_sees_the_owners() -> None:
    # The check is only worth something if it would fire on the code that does format errors.
    assert _error_json(SOURCES["quorumdb/errors.py"])
    assert _error_json(ast.parse('BODY = b\'{"__type":"com.amazon.coral.service#X"}\''))
