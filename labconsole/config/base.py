"""Base class for preset sections."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A preset section: frozen, unknown keys are errors, numbers are not silently coerced
    from strings (``epochs = "ten"`` is an error, ``epochs = 10`` is fine)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def smoke(self) -> Section:
        """A shrunk copy that runs in seconds on a CPU (tiny model, tiny data, 1-2 epochs)."""
        return self
