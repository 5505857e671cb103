"""The import graph points one way: cli → pipeline → train/eval → rollout → data → rewards
→ rl/models/config and the small helpers. Every import in r1/ counts — module level and inside
functions — found by walking the source's syntax trees, so a function-local import cannot hide an
upward edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import r1

ROOT = Path(r1.__file__).parent
LAYERS = [  # lowest first; a module may import from its own layer's packages and from lower layers
    {"rl", "config", "config_tree", "config_check", "precision", "progress", "allocator", "models"},
    {"rewards"},
    {"data"},
    {"rollout"},
    {"train", "eval", "integrations"},
    {"pipeline"},
    {"cli", "cli_parser", "cli_subcommands", "__main__", "__init__"},
]
# Known upward edges, each with its reason; the test fails when one disappears too (then delete it here).
ALLOWED = {
    ("rewards.judge", "data"): "the generative judge renders its prompt with the chat templates",
    ("rewards.judge", "rollout"): "the generative judge samples its verdict through the rollout engines",
}


def package(module: str) -> str:
    """'r1.train.grpo' -> 'train'; 'r1.cli' -> 'cli'."""
    return module.split(".")[1]


def layer(name: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if name in names)


def imports(path: Path) -> set[str]:
    """Every r1 module `path` imports (absolute or relative, anywhere in the file)."""
    parts = ("r1", *path.relative_to(ROOT).with_suffix("").parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("r1.")}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(parts[: len(parts) - node.level]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            if target.startswith("r1.") or target == "r1":
                found |= {target} if node.module or target != "r1" else {f"r1.{a.name}" for a in node.names}
    return {m for m in found if m.count(".") >= 1}


def edges() -> set[tuple[str, str]]:
    """(importing module without the 'r1.' prefix, imported package), across packages only."""
    out = set()
    for path in ROOT.rglob("*.py"):
        source = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for target in imports(path):
            if package(f"r1.{source}") != package(target):
                out.add((source, package(target)))
    return out


def test_every_package_has_a_layer():
    packages = {
        p.stem if p.is_file() else p.name for p in ROOT.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()
    }
    assert packages <= set().union(*LAYERS), packages - set().union(*LAYERS)


def test_imports_point_down_the_layers():
    upward = sorted((source, target) for source, target in edges() if layer(target) > layer(package(f"r1.{source}")))
    unexplained = [edge for edge in upward if edge not in ALLOWED]
    assert not unexplained, f"imports against the layers (cli → … → rl/models/config): {unexplained}"
    gone = sorted(set(ALLOWED) - set(upward))
    assert not gone, f"these allowed exceptions no longer exist; remove them from ALLOWED: {gone}"
