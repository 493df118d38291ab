"""Zero code change: genlab's kernels behind the scipy, scikit-learn and pandas functions a program
already calls.

Three ways to turn it on::

    python -m genlab.accel script.py [args]      # or: python -m genlab.accel -m module [args]
    %load_ext genlab.accel                        # IPython / Jupyter
    import genlab.accel; genlab.accel.install()   # in code

What is replaced, in the modules users import them from: ``scipy.stats.kendalltau``,
``scipy.stats.gaussian_kde`` (``evaluate``/``__call__``/``pdf``/``logpdf``),
``sklearn.neighbors.KernelDensity`` (``score_samples``/``score``), and ``DataFrame.corr`` and
``Series.corr`` with ``method="kendall"`` (``DataFrame.corrwith`` through ``Series.corr``).
A peer that is not imported yet is patched when it is imported; one imported before
:func:`install` is patched at once, and the names other modules already took from it
(``from scipy.stats import kendalltau``) are replaced too. :func:`install` also sets
``GENLAB_ACCEL=1``, so processes started from this one (multiprocessing, joblib's loky, Ray
workers, genlab's study) install it at startup (through the ``genlab_accel.pth`` file that the
wheel puts in site-packages).

A call the fast path does not cover (another metric or kernel, an option genlab does not
implement, NaN where scipy's ``nan_policy`` decides, long double or object data, a subclass's
own internals, ...) runs the original: a patched program prints what the unpatched one prints,
errors included, only faster. The replacements are subclasses of the originals, so
``isinstance`` checks and user subclasses keep working.

Observability (:mod:`genlab.accel._dispatch`): ``GENLAB_ACCEL_PROFILE=1`` or
``with genlab.accel.profile():`` prints per function the fast calls, the fallbacks with their
reasons, and the time; ``GENLAB_ACCEL_FAIL_ON_FALLBACK=1`` turns a fallback into
:class:`FallbackError`; ``GENLAB_ACCEL_CHECK=1`` runs both paths and warns
(:class:`AccelMismatchWarning`) where they differ beyond ``CHECK_RTOL``/``CHECK_ATOL``.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

from genlab.accel._dispatch import (
    CHECK_ATOL,
    CHECK_RTOL,
    AccelMismatchWarning,
    FallbackError,
    Profile,
)

__all__ = [
    "CHECK_ATOL",
    "CHECK_RTOL",
    "AccelMismatchWarning",
    "FallbackError",
    "Profile",
    "install",
    "is_installed",
    "load_ipython_extension",
    "profile",
    "uninstall",
    "unload_ipython_extension",
]


@dataclasses.dataclass(frozen=True)
class _Target:
    """One replaced attribute: ``module.path`` (a function or class, or a method of a class)."""

    module: str
    path: str
    factory: Callable[[Any, Profile], Any]


def _factories() -> list[_Target]:
    from genlab.accel import _pandas, _scipy, _sklearn

    return [
        _Target("scipy.stats", "kendalltau", _scipy.make_kendalltau),
        _Target("scipy.stats", "gaussian_kde", _scipy.make_gaussian_kde),
        _Target("sklearn.neighbors", "KernelDensity", _sklearn.make_kernel_density),
        _Target("pandas", "DataFrame.corr", _pandas.make_frame_corr),
        _Target("pandas", "Series.corr", _pandas.make_series_corr),
    ]


@dataclasses.dataclass
class _Applied:
    """One replacement in place: ``setattr(owner, name, replacement)`` over ``original``."""

    owner: Any
    name: str
    original: Any
    replacement: Any


class _Installation:
    """The patches in place, and the import hook that patches peers imported later."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.applied: list[_Applied] = []
        self.pending = {t.module for t in _factories()}
        self.hook = _PatchOnImport(self)

    def patch_module(self, module_name: str) -> None:
        """Replace the targets of an imported peer module, and the names others took from it."""
        if module_name not in self.pending:
            return
        self.pending.discard(module_name)
        module = sys.modules[module_name]
        for target in (t for t in _factories() if t.module == module_name):
            *owner_path, name = target.path.split(".")
            owner: Any = module
            for part in owner_path:
                owner = getattr(owner, part)
            original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
            replacement = target.factory(original, self.profile)
            setattr(owner, name, replacement)
            self.applied.append(_Applied(owner, name, original, replacement))
            if not owner_path:
                self._replace_references(original, replacement, module_name)

    def _replace_references(self, original: Any, replacement: Any, source: str) -> None:
        """``from scipy.stats import kendalltau`` done before install: replace that name too (in
        user modules; the peers' own modules keep their internals)."""
        peers = ("scipy", "sklearn", "pandas", "genlab", "numpy")
        for name, module in list(sys.modules.items()):
            if module is None or name.split(".")[0] in peers or name == source:
                continue
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for attribute, value in list(namespace.items()):
                if value is original:
                    setattr(module, attribute, replacement)
                    self.applied.append(_Applied(module, attribute, original, replacement))

    def undo(self) -> None:
        for patch in reversed(self.applied):
            current = (
                patch.owner.__dict__.get(patch.name)
                if isinstance(patch.owner, type)
                else (getattr(patch.owner, patch.name, None))
            )
            if current is patch.replacement:
                setattr(patch.owner, patch.name, patch.original)
        self.applied.clear()
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self.hook)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches a peer module right after it is first imported (so that install() imports
    nothing itself)."""

    def __init__(self, installation: _Installation) -> None:
        self.installation = installation

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.installation.pending:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        execute = loader.exec_module
        installation = self.installation

        def exec_module(module: ModuleType) -> None:
            execute(module)
            installation.patch_module(fullname)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


#: The installation in effect (None when not installed): patching is process-wide by nature.
_installation: _Installation | None = None
_PROFILE = Profile()


def install(
    *,
    profile: bool | None = None,
    fail_on_fallback: bool | None = None,
    check: bool | None = None,
) -> None:
    """Put genlab's fast paths behind the peers' functions (idempotent).

    Parameters
    ----------
    profile, fail_on_fallback, check : bool, optional
        Set ``GENLAB_ACCEL_PROFILE``, ``GENLAB_ACCEL_FAIL_ON_FALLBACK`` or ``GENLAB_ACCEL_CHECK``
        (for this process and the ones it starts); None leaves the environment as it is.
    """
    global _installation
    for variable, value in (
        ("GENLAB_ACCEL_PROFILE", profile),
        ("GENLAB_ACCEL_FAIL_ON_FALLBACK", fail_on_fallback),
        ("GENLAB_ACCEL_CHECK", check),
    ):
        if value is not None:
            os.environ[variable] = "1" if value else "0"
    os.environ["GENLAB_ACCEL"] = "1"
    if _installation is not None:
        return
    _installation = _Installation(_PROFILE)
    sys.meta_path.insert(0, _installation.hook)
    for module_name in sorted(_installation.pending):
        if module_name in sys.modules:
            _installation.patch_module(module_name)
    if os.environ.get("GENLAB_ACCEL_PROFILE", "") not in ("", "0"):
        atexit.register(_print_profile_at_exit)


def _print_profile_at_exit() -> None:
    if os.environ.get("GENLAB_ACCEL_PROFILE", "") not in ("", "0"):
        _PROFILE.print()


def uninstall() -> None:
    """Restore the originals (also the names replaced in other modules) and stop patching
    imports; child processes started afterwards do not install it either."""
    global _installation
    os.environ.pop("GENLAB_ACCEL", None)
    if _installation is None:
        return
    _installation.undo()
    _installation = None


def is_installed() -> bool:
    """Whether :func:`install` is in effect."""
    return _installation is not None


@contextlib.contextmanager
def profile(file: Any = None) -> Iterator[Profile]:
    """Count the patched calls made inside the block and print the table at its end (to
    ``file``, standard error by default). Installs genlab.accel if it is not."""
    install()
    outer = _PROFILE.functions
    _PROFILE.functions = {}
    try:
        yield _PROFILE
    finally:
        block = Profile()
        block.functions = _PROFILE.functions
        block.print(file)
        for name, stats in block.functions.items():
            total = outer.setdefault(name, type(stats)())
            total.fast_calls += stats.fast_calls
            total.fast_seconds += stats.fast_seconds
            total.fallback_calls += stats.fallback_calls
            total.fallback_seconds += stats.fallback_seconds
            total.reasons.update(stats.reasons)
        _PROFILE.functions = outer


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext genlab.accel``."""
    install()


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext genlab.accel``."""
    uninstall()
