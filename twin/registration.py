"""The gymnasium id of the line env and its registration (gymnasium loads `twin.env` at `make`)."""

from __future__ import annotations

import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType

ENV_ID = "linetwin/Line-v0"


def register() -> None:
    """Register `linetwin/Line-v0` with gymnasium (idempotent), by a string entry point: nothing
    of the env is imported until `gym.make`."""
    import gymnasium as gym  # here, so that importing twin does not load gymnasium

    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="twin.env:LineEnv")


def register_with_gymnasium() -> None:
    """Register now if gymnasium is loaded, else right after it is (in whatever order a program
    imports twin and gymnasium), without importing gymnasium."""
    if "gymnasium" in sys.modules:
        register()
    elif not any(isinstance(finder, _AfterGymnasium) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterGymnasium())


class _AfterGymnasium:
    """A one-shot import hook: finds gymnasium as the other finders do and registers the env once
    gymnasium's module has run (gymnasium 1.x reads no entry points of installed packages)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if name != "gymnasium":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def run_then_register(module: ModuleType) -> None:
                run(module)
                register()

            spec.loader.exec_module = run_then_register  # type: ignore[method-assign]
        return spec
