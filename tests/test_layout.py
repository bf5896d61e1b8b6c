"""The package's layout: imports form a DAG, each layer imports only the layers below it, and no
module grows past the size a newcomer reads in one sitting. Read from the source, nothing runs."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "dtql"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """Every module this one imports, at the top or inside a function (`import x.y`, `from x
    import y`: y counts when it is itself a module)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def internal_imports(name: str) -> set[str]:
    return {other for other in imports_of(name) if other in MODULES and other != name}


def test_internal_imports_form_a_dag():
    # A package's __init__ may re-export its own modules; everything else must not loop.
    graph = {name: internal_imports(name) for name in MODULES}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            cycle = trail[trail.index(name) :]
            pytest.fail(f"import cycle: {' -> '.join(cycle)}")
        state[name] = "open"
        for other in sorted(graph[name]):
            if not (MODULES[other].name == "__init__.py" and name.startswith(other + ".")):
                visit(other, [*trail, other])
        state[name] = "done"

    for name in sorted(graph):
        visit(name, [name])


@pytest.mark.parametrize(
    "layer, forbidden",
    [
        ("dtql.algos", ("data", "envs", "run", "evaluation", "cli", "collect", "toylab")),
        ("dtql.losses", ("algos", "data", "envs", "run", "evaluation", "cli")),
        ("dtql.edm", ("algos", "losses", "networks", "data", "envs", "run", "cli")),
        ("dtql.data", ("algos", "envs", "run", "evaluation", "cli", "collect", "toylab")),
        ("dtql.envs", ("algos", "data", "run", "evaluation", "cli", "collect", "toylab")),
        ("dtql.run", ("cli", "collect", "toylab", "sweeps", "reports", "api")),
        ("dtql.sweeps", ("cli", "collect", "toylab", "reports", "api")),
        # A report is made from run folders alone: no training, no simulator. It reads only
        # the record of a run's dataset (its fingerprint) and D4RL's reference numbers.
        ("dtql.reports", ("algos", "data", "envs", "run", "evaluation", "cli", "sweeps", "api")),
    ],
)
def test_each_layer_imports_only_the_layers_below(layer, forbidden):
    allowed = {"dtql.data.collected", "dtql.envs.d4rl_fingerprints"}
    for name in MODULES:
        if name == layer or name.startswith(layer + "."):
            bad = {
                other
                for other in internal_imports(name) - allowed
                if any(other == f"dtql.{f}" or other.startswith(f"dtql.{f}.") for f in forbidden)
            }
            assert not bad, f"{name} imports {sorted(bad)}"


def test_nothing_imports_the_cli():
    for name in MODULES:
        assert "dtql.cli" not in imports_of(name) or name == "dtql.cli", name


def test_the_task_registry_does_not_import_a_simulator():
    assert not {"gymnasium", "mujoco", "gymnasium_robotics"} & imports_of("dtql.envs.registry")


def test_no_module_is_longer_than_a_sitting():
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


MAX_FUNCTION_LINES = 80


def test_no_function_is_longer_than_a_screen():
    """A reader holds a function whole (issue 26): none over MAX_FUNCTION_LINES lines."""
    long = {}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{name}.{node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_two_modules_share_a_file_name():
    """One name per thing (issue 26): `policies.py` is the one-step policy, nowhere else a
    numpy SAC actor. Package files (__init__, __main__) are the exception."""
    by_name: dict[str, list[str]] = {}
    for name, path in MODULES.items():
        if not path.name.startswith("__"):
            by_name.setdefault(path.name, []).append(name)
    shared = {file: names for file, names in by_name.items() if len(names) > 1}
    assert not shared, f"file names used twice: {shared}"


def test_each_test_file_is_named_after_what_it_tests():
    """tests/test_<x>.py is named after a module or package of src/dtql (a command's singular,
    `test_sweep` for `sweeps`, and `test_<package>_<part>` count too), so a rename shows here."""
    names = {name.rsplit(".", 1)[-1] for name in MODULES}
    whole_package = {"layout", "accelerator"}  # the import graph; a run on the device machine

    def named_after_something(stem: str) -> bool:
        return bool({stem, stem + "s", stem.split("_")[0]} & names) or stem in whole_package

    tests = Path(__file__).parent
    stray = [p.name for p in tests.glob("test_*.py") if not named_after_something(p.stem[5:])]
    assert not stray, f"test files named after nothing in src/dtql: {stray}"
