"""The type stub python/genlab/_core.pyi must describe the extension exactly."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from genlab import _core

STUB = Path(__file__).resolve().parents[1] / "python" / "genlab" / "_core.pyi"


def _stub_functions() -> dict[str, ast.FunctionDef]:
    tree = ast.parse(STUB.read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


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
    return {
        name: obj
        for name, obj in vars(_core).items()
        if callable(obj) and not name.startswith("_") and not isinstance(obj, type)
    }


def test_every_extension_function_is_in_the_stub() -> None:
    missing = sorted(set(_runtime_functions()) - set(_stub_functions()))
    assert not missing, f"functions of genlab._core missing from _core.pyi: {missing}"


def test_every_stub_function_exists() -> None:
    extra = sorted(set(_stub_functions()) - set(_runtime_functions()))
    assert not extra, f"_core.pyi declares functions the extension does not have: {extra}"


@pytest.mark.parametrize("name", sorted(_stub_functions()))
def test_signatures_match(name: str) -> None:
    runtime = _runtime_functions().get(name)
    if runtime is None:
        pytest.fail(f"{name} is not in the extension")
    assert _stub_parameters(_stub_functions()[name]) == _runtime_parameters(runtime)


def test_stub_declares_the_version() -> None:
    assert "__version__: str" in STUB.read_text()
    assert isinstance(_core.__version__, str)
