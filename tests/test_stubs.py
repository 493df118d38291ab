"""The type stubs python/genlab/_core/*.pyi must describe the extension exactly."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from genlab import _core

STUBS = Path(__file__).resolve().parents[1] / "python" / "genlab" / "_core"
SUBMODULES = ("rank", "rate", "kde", "attention", "spectrum")


def _stub_file(module: str) -> Path:
    return STUBS / ("__init__.pyi" if module == "" else f"{module}.pyi")


def _stub_functions() -> dict[str, ast.FunctionDef]:
    """Every stubbed function, by its qualified name below genlab._core ("rank.kendalltau")."""
    out: dict[str, ast.FunctionDef] = {}
    for module in ("", *SUBMODULES):
        tree = ast.parse(_stub_file(module).read_text())
        prefix = f"{module}." if module else ""
        out.update(
            {prefix + node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
        )
    return out


def _stub_parameters(fn: ast.FunctionDef) -> list[tuple[str, str, bool]]:
    args = fn.args
    out: list[tuple[str, str, bool]] = []
    positional = args.posonlyargs + args.args
    first_default = len(positional) - len(args.defaults)
    for i, a in enumerate(args.posonlyargs):
        out.append((a.arg, "POSITIONAL_ONLY", i >= first_default))
    for i, a in enumerate(args.args, start=len(args.posonlyargs)):
        out.append((a.arg, "POSITIONAL_OR_KEYWORD", i >= first_default))
    for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        out.append((a.arg, "KEYWORD_ONLY", d is not None))
    return out


def _runtime_parameters(obj: object) -> list[tuple[str, str, bool]]:
    sig = inspect.signature(obj)  # type: ignore[arg-type]
    return [
        (p.name, p.kind.name, p.default is not inspect.Parameter.empty)
        for p in sig.parameters.values()
    ]


def _runtime_functions() -> dict[str, object]:
    out: dict[str, object] = {}
    for module in ("", *SUBMODULES):
        namespace = getattr(_core, module) if module else _core
        prefix = f"{module}." if module else ""
        out.update(
            {
                prefix + name: obj
                for name, obj in vars(namespace).items()
                if callable(obj) and not name.startswith("_") and not isinstance(obj, type)
            }
        )
    return out


def test_the_submodules_mirror_the_core_and_import_by_name() -> None:
    """`genlab._core.rank` etc. are importable modules, not only attributes."""
    import importlib

    for module in SUBMODULES:
        imported = importlib.import_module(f"genlab._core.{module}")
        assert imported is getattr(_core, module)
        assert imported.__name__ == f"genlab._core.{module}"


def test_every_extension_function_is_in_the_stub() -> None:
    missing = sorted(set(_runtime_functions()) - set(_stub_functions()))
    assert not missing, f"functions of genlab._core missing from the stubs: {missing}"


def test_every_stub_function_exists() -> None:
    extra = sorted(set(_stub_functions()) - set(_runtime_functions()))
    assert not extra, f"the stubs declare functions the extension does not have: {extra}"


@pytest.mark.parametrize("name", sorted(_stub_functions()))
def test_signatures_match(name: str) -> None:
    runtime = _runtime_functions().get(name)
    if runtime is None:
        pytest.fail(f"{name} is not in the extension")
    assert _stub_parameters(_stub_functions()[name]) == _runtime_parameters(runtime)


def test_stub_declares_the_version() -> None:
    assert "__version__: str" in _stub_file("").read_text()
    assert isinstance(_core.__version__, str)
