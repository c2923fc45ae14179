"""One direction of flow: a module imports only from its own or earlier stages."""

from __future__ import annotations

import ast

from tests.conftest import REPO

STAGES = [
    "config",
    "storage",
    "device",
    "records",
    "preflight",
    "preprocess",
    "model",
    "train",
    "export",
    "serve",
    "evaluate",
    "demo",
    "cli",
]
PACKAGE = REPO / "ray_vlm"


def _stage(module_path: str) -> str:
    return module_path.split(".")[1]


def _imports(path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: use absolute imports (ray_vlm.<stage>...)"
            names.append(node.module or "")
    return [n for n in names if n.startswith("ray_vlm.")]


def test_every_module_belongs_to_a_stage() -> None:
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.name == "__init__.py" and len(rel.parts) == 1:
            continue
        assert rel.parts[0].removesuffix(".py") in STAGES, f"{rel}: not in a known stage {STAGES}"


def test_imports_follow_the_flow() -> None:
    violations = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) == 1 and rel.name == "__init__.py":
            continue
        own = STAGES.index(rel.parts[0].removesuffix(".py"))
        for name in _imports(path):
            if STAGES.index(_stage(name)) > own:
                violations.append(f"{rel} imports {name} (a later stage)")
    assert not violations, "\n".join(violations)
