"""Tracing a model for the fast path never disturbs a forward pass on another thread."""

from __future__ import annotations

import threading

import torch
from torch import fx, nn

from labconsole.engine.stage1.fx_trace import symbolic_trace


class PausedTrace(nn.Module):
    """A model whose forward, run by the tracer, waits half-way (its patches then in force)."""

    def __init__(self, reached: threading.Event, go_on: threading.Event) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(4, 4), nn.Linear(4, 2)
        self.reached, self.go_on = reached, go_on

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.first(x)
        self.reached.set()
        self.go_on.wait(10)
        return self.second(torch.relu(hidden))


def _forward_elsewhere_during(trace) -> list[BaseException | torch.Tensor]:
    reached, go_on = threading.Event(), threading.Event()
    traced: list[fx.GraphModule] = []
    tracing = threading.Thread(target=lambda: traced.append(trace(PausedTrace(reached, go_on))))
    tracing.start()
    assert reached.wait(10)
    other = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1))  # e.g. a training job's model
    outcome: list[BaseException | torch.Tensor] = []
    try:
        outcome.append(other(torch.ones(2, 3)))
    except Exception as exc:  # what the patched nn.Module.__call__ does to it
        outcome.append(exc)
    go_on.set()
    tracing.join(10)
    assert traced and isinstance(traced[0], fx.GraphModule)
    return outcome


def test_a_forward_on_another_thread_runs_untouched_while_a_model_is_traced() -> None:
    (result,) = _forward_elsewhere_during(symbolic_trace)
    assert isinstance(result, torch.Tensor) and result.shape == (2, 1)


def test_plain_fx_tracing_breaks_that_forward() -> None:
    """Why the tracer above exists: fx's own patches reach every thread."""
    (result,) = _forward_elsewhere_during(fx.symbolic_trace)
    assert isinstance(result, NameError)


def test_the_traced_graph_computes_what_the_model_does() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    x = torch.randn(2, 3, 8, 8)
    model(x)
    model.eval()
    with torch.no_grad():
        assert torch.equal(symbolic_trace(model)(x), model(x))
