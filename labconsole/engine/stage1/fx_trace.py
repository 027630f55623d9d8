"""``torch.fx`` tracing that leaves every other thread alone.

``fx.symbolic_trace`` patches ``nn.Module.__call__`` and ``__getattr__`` on the class while it
traces, so a module called on any other thread meanwhile is routed into the tracer and fails
("module is not installed as a submodule"). In the console a training job or another
session call can run a forward pass on another thread while a session folds its model, so the
tracer here handles only the calls of the thread that traces and passes the others straight to
the module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from torch import fx, nn


class OwnThreadTracer(fx.Tracer):
    """An ``fx.Tracer`` whose patches act on its own thread only."""

    def __init__(self) -> None:
        super().__init__()
        self._thread: int | None = None

    def _elsewhere(self) -> bool:
        return self._thread is not None and threading.get_ident() != self._thread

    def trace(self, root: nn.Module | Callable[..., Any], concrete_args: dict[str, Any] | None = None) -> fx.Graph:
        self._thread = threading.get_ident()
        try:
            return super().trace(root, concrete_args)
        finally:
            self._thread = None

    def call_module(
        self, m: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if self._elsewhere():
            return forward(*args, **kwargs)  # the module's own call, untouched
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if self._elsewhere():
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)


def symbolic_trace(model: nn.Module) -> fx.GraphModule:
    """``fx.symbolic_trace(model)``, safe while other threads run modules."""
    tracer = OwnThreadTracer()
    graph = tracer.trace(model)
    return fx.GraphModule(tracer.root, graph, model.__class__.__name__)
