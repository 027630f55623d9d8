"""What ``labconsole.engine.stage1.evidence.evidence_readout`` measured: a readout's evidence
block together with the control it was measured against.

A readout row keeps the two apart: the control's splits and each draw's neurons go to
``Readout.control`` / ``control_neurons`` (where a plain random control goes too), the rest
to ``Readout.evidence``. This module sits beside ``evidence`` rather than in it because it
holds ``ReadoutSplit`` records, and ``sections`` (where they live) imports ``evidence``.
"""

from __future__ import annotations

from pydantic import Field

from labconsole.engine.records.evidence import Evidence
from labconsole.engine.records.sections import Readout, ReadoutSplit


class MeasuredEvidence(Evidence):
    """The evidence block with its control: the control draws' readout per split (mean ± sd
    of the draws' change) and the neurons of each draw."""

    control: dict[str, ReadoutSplit] = Field(default_factory=dict)
    control_neurons: list[list[tuple[str, int]]] = Field(default_factory=list)

    def evidence(self) -> Evidence:
        """The evidence block alone (what a readout row keeps as ``evidence``), with exactly
        the fields that were set."""
        kept = self.model_dump(exclude={"control", "control_neurons"}, exclude_unset=True)
        return Evidence.model_validate(kept)

    def merged_into(self, readout: Readout, kind: str) -> Readout:
        """A copy of ``readout`` with this control (``kind``: how its draws were picked) and
        this evidence; the readout's own numbers are kept."""
        out = readout.model_copy(deep=True)
        out.control = {split: part.model_copy(deep=True) for split, part in self.control.items()}
        out.control_neurons = [list(draw) for draw in self.control_neurons]
        out.control_kind = kind
        out.evidence = self.evidence()
        return out
