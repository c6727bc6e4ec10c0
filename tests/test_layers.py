"""The package's shape: no import circle, the public names users import."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import bento_track

PACKAGE = Path(bento_track.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import in the module, in functions too, except under TYPE_CHECKING."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the bento_track modules it imports (a submodule named in
    `from package import name` counts as that submodule). A package's own
    `__init__` loading its submodules is not a circle, as Python runs it
    first; the `__init__` files of the layers import nothing."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rsplit(".", 1)[0]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                bases = [alias.name for alias in node.names]
                names: list[str] = []
            else:
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                bases = [base]
                names = [alias.name for alias in node.names]
            for base in bases:
                if not base.startswith("bento_track"):
                    continue
                submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in modules]
                targets.update(submodules or [base])
        targets.discard(name)
        graph[name] = {t for t in targets if t in modules}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_circle_anywhere_in_the_package() -> None:
    graph = import_graph()
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


#: The package's layers, lowest first. A module imports only modules of its
#: own layer or of lower ones (a module not named here is the layer of its
#: nearest named parent). Same-layer imports are free but never circular.
LAYERS: list[list[str]] = [
    # foundation: no bento_track import but each other; the emulator is a
    # program of its own and imports none of the library
    ["bento_track._version", "bento_track._internal", "bento_track.errors"],
    ["bento_track.emulator"],
    # what stores and delivery both work with: records, kinds, clock, budget
    ["bento_track._core"],
    # durable and in-memory stores: only the layers above
    ["bento_track.stores"],
    # the data model and settings; the checks events are built with
    [
        "bento_track._validation",
        "bento_track.config",
        "bento_track.options",
        "bento_track.events",
        "bento_track.subscribers",
        "bento_track.models",
        "bento_track.signals",
    ],
    # HTTP to Bento: the transport and the API clients (sync and asyncio)
    ["bento_track._transport", "bento_track._api_client", "bento_track.api"],
    # the worker that moves records from a store to Bento
    ["bento_track._delivery"],
    # building events on the capturing thread; hands them to a client
    ["bento_track._capture"],
    ["bento_track._client", "bento_track.client"],
    # the process's default client and what builds on it
    [
        "bento_track._default",
        "bento_track.sync",
        "bento_track.testing",
        "bento_track.queues",
    ],
    # capture front ends and framework integrations
    [
        "bento_track.asgi",
        "bento_track.wsgi",
        "bento_track.decorators",
        "bento_track.logging",
        "bento_track.integrations",
    ],
    # programs, and the package that names the public surface
    ["bento_track.cli", "bento_track.__main__", "bento_track"],
]


def layer_of(module: str) -> int:
    """The index in `LAYERS` of `module` (its nearest named parent's)."""
    name = module
    while True:
        for index, layer in enumerate(LAYERS):
            if name in layer:
                return index
        if "." not in name:
            raise AssertionError(f"{module} is in no layer of LAYERS")
        name = name.rsplit(".", 1)[0]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a higher layer's module, said with both layers."""
    found = []
    for module, targets in sorted(graph.items()):
        here = layer_of(module)
        for target in sorted(targets):
            there = layer_of(target)
            if there > here:
                found.append(
                    f"{module} (layer {here}: {', '.join(LAYERS[here])}) imports "
                    f"{target} (layer {there}: {', '.join(LAYERS[there])})"
                )
    return found


def test_each_layer_imports_only_its_own_or_lower_layers() -> None:
    order = "\n".join(f"{i}: {', '.join(layer)}" for i, layer in enumerate(LAYERS))
    found = upward_imports(import_graph())
    assert found == [], "layers, lowest first:\n" + order + "\n" + "\n".join(found)


def test_the_stores_import_only_the_bottom_layers() -> None:
    graph = import_graph()
    allowed = {"bento_track._version", "bento_track._internal", "bento_track.errors"}
    for module, targets in graph.items():
        if module.startswith("bento_track.stores"):
            outside = {
                t
                for t in targets
                if not t.startswith(("bento_track.stores", "bento_track._core"))
            }
            assert outside <= allowed, (module, outside - allowed)


def test_an_upward_import_is_found_and_names_both_layers() -> None:
    graph = {"bento_track.stores.memory": {"bento_track._delivery.worker"}}
    [said] = upward_imports(graph)
    assert said.startswith("bento_track.stores.memory (layer 3: bento_track.stores)")
    assert "bento_track._delivery.worker (layer 6: bento_track._delivery)" in said
    assert (
        upward_imports({"bento_track._delivery.worker": {"bento_track.stores"}}) == []
    )


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_modules_use_only_public_names_of_each_other() -> None:
    """`from .x import _name` across modules is how layers leak; none is left."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (
                node.level or "bento_track" in (node.module or "")
            ):
                offenders += [
                    f"{path.relative_to(PACKAGE)}: {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and alias.name != "__version__"
                ]
    assert offenders == []


def test_signals_import_by_name() -> None:
    from bento_track.signals import (
        batch_failed,
        batch_sent,
        event_captured,
        event_dropped,
    )

    assert [
        s.name for s in (event_captured, batch_sent, batch_failed, event_dropped)
    ] == [
        "event_captured",
        "batch_sent",
        "batch_failed",
        "event_dropped",
    ]
    assert bento_track.signals.event_captured is event_captured


def test_public_types_import_from_the_top_package() -> None:
    from bento_track import (  # noqa: F401
        ConfigurationError,
        Event,
        InvalidEventError,
        RequestInfo,
    )

    assert issubclass(InvalidEventError, ValueError)


def test_public_surface_is_pinned() -> None:
    assert bento_track.__all__ == [
        "APIError",
        "BentoError",
        "BentoHandler",
        "BentoMiddleware",
        "BentoWSGIMiddleware",
        "Client",
        "ConfigurationError",
        "DeliveryStats",
        "Event",
        "InvalidEventError",
        "RequestInfo",
        "Scrubber",
        "Store",
        "StoreStats",
        "__version__",
        "change_subscriber_email",
        "current_request",
        "flush",
        "get_client",
        "identify",
        "init",
        "shutdown",
        "signals",
        "stats",
        "sync_subscribers",
        "track",
        "track_event",
        "unsubscribe_subscriber",
        "upsert_subscriber",
    ]
    for name in bento_track.__all__:
        assert getattr(bento_track, name) is not None


def test_public_modules_stay_where_users_import_them() -> None:
    for name in (
        "asgi",
        "wsgi",
        "decorators",
        "logging",
        "api",
        "models",
        "errors",
        "config",
        "events",
        "stores",
        "emulator",
        "signals",
    ):
        importlib.import_module(f"bento_track.{name}")


def test_init_declares_the_clients_keyword_arguments() -> None:
    import inspect

    client = inspect.signature(bento_track.Client).parameters
    init = inspect.signature(bento_track.init).parameters
    assert list(init) == [name for name in client if not name.startswith("_")]


def test_the_old_name_of_the_stores_package_still_imports_with_a_warning() -> None:
    import sys
    import warnings

    sys.modules.pop("bento_track.queues", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        queues = importlib.import_module("bento_track.queues")
    assert [w.category for w in caught] == [DeprecationWarning]
    assert "bento_track.stores" in str(caught[0].message)
    assert queues.SQLiteStore is bento_track.stores.SQLiteStore
    assert queues.__all__ == bento_track.stores.__all__
