"""The Interventions screen's evidence views: the layer-matched control while it is computed
(its first draws provisional, then all of them) and the flipped-examples dialog of the readout
shown. ``InterventionsScreen`` is built on it; the widgets are ``#readout``, ``#readout-status``
and ``#readout-note``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from textual.widgets import DataTable, Static

from labconsole.ui.engine_port import NeuronRef, SessionPort
from labconsole.ui.screens.base import LabScreen
from labconsole.ui.widgets.busy_line import BusyLine
from labconsole.ui.widgets.matched_control import (
    DRAWS,
    FIRST_DRAWS,
    matched_rows,
    show_matched_rows,
    verdict_line,
)
from labconsole.ui.widgets.readout_table import SPLITS, ReadoutEntry, minority_groups

if TYPE_CHECKING:  # a pydantic record, built on a worker
    from labconsole.engine.records import Readout


class ReadoutEvidence(LabScreen):
    """What the readout shows beyond its own numbers: the matched control and the flips."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: ReadoutEntry | None = None  # the readout the table shows

    def readout_then_matched(
        self,
        session: SessionPort,
        neurons: Sequence[NeuronRef],
        edit: tuple[str, float, int],
        random_control: bool,
        matched: bool,
        **kwargs: Any,
    ) -> Readout:
        """On a worker: the readout (``edit`` = mode, σ, seeds; ``kwargs`` go to it); with
        ``matched``, then its layer-matched control in one walk over the draws, counted on the
        status line (k/20 draws), its numbers over the first draws and then over more of them
        shown as they come (≈). The result is the readout with its control."""
        mode, sigma, seeds = edit
        result = session.readout(list(neurons), mode, sigma, seeds, SPLITS, random_control, **kwargs)
        if not matched:
            return result

        def show(shown: Readout) -> None:
            self.app.call_from_thread(self._show_matched_progress, shown)

        show(result)
        return session.matched_control(
            result,
            DRAWS,
            FIRST_DRAWS,
            on_partial=show,
            progress=self.lab.bridge.progress_in_call(self._show_draws_walked),
        )

    def _show_draws_walked(self, done: int, total: int) -> None:
        self.query_one("#readout-status", BusyLine).report(done, total, "draws")

    def _show_matched_progress(self, result: Readout) -> None:
        """The exact readout while its layer-matched control is computed: ``…`` until the first
        draws are in (no ``evidence`` yet), then the numbers over the draws so far, ≈
        (provisional), until all are."""
        status = self.query_one("#readout-status", BusyLine)
        if not status.busy:  # Esc stopped waiting meanwhile
            return
        session = self.lab.session
        groups = list(session.group_names) if session else result.group_names()
        minority = minority_groups(session.train_group_counts if session else {})
        table = self.query_one("#readout", DataTable)
        show_matched_rows(table, matched_rows(result, groups, minority, provisional=True))
        note = self.query_one("#readout-note", Static)
        if result.evidence is None:
            status.advance(2, "layer-matched control")
            note.update(
                f"matched Δ: as many neurons from each layer, mean ± sd over {DRAWS} draws; "
                f"≈ from the first {FIRST_DRAWS}, p follows"
            )
            return
        status.advance(3, "layer-matched control, ≈ so far")
        note.update(verdict_line(result.evidence, groups, minority, provisional=True))

    def action_flips(self) -> None:
        """The shown readout's flipped examples: counts per group and split, and the flipped
        minority training images (loaded from the session's cache in a worker)."""
        from labconsole.ui.dialogs.flipped_examples import (
            THUMBNAIL_SIZE,
            FlippedExamplesDialog,
            preview_ids,
            preview_limit,
        )

        session, entry = self.lab.session, self.shown
        found = entry.result.evidence if entry is not None else None
        if session is None or entry is None or found is None:
            self.notify("Flipped examples come with the matched control: choose + matched (p), then a.")
            return
        groups = list(session.group_names)
        minority = minority_groups(session.train_group_counts)
        wanted = preview_ids(found.flips, [g for g in groups if g in minority], preview_limit(self.app.size.width))
        ids = [i for block in wanted.values() for i in block]
        status = self.query_one("#readout-status", BusyLine)
        what = f"{entry.edit} on {len(entry.neurons)} neuron{'s' if len(entry.neurons) != 1 else ''}"

        def show(images: list[Any]) -> None:
            pictures = iter(images)
            by_block = {key: [next(pictures) for _ in block] for key, block in wanted.items()}
            status.finish(f"flipped examples of {what} (f shows them again)")
            self.app.push_screen(FlippedExamplesDialog(found.flips, groups, minority, by_block, what))

        worker = self.lab.bridge.call(
            "Flipped examples",
            session.example_images,
            "train",
            ids,
            THUMBNAIL_SIZE,
            on_result=show,
            group="flips",
            on_error=lambda error: status.finish(f"✗ the flipped images failed: {error}", error=True),
        )
        status.begin(f"loading {len(ids)} flipped training images", worker)
