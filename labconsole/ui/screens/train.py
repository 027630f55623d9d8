"""Train: launch ERM or fine-tuning from a preset (with a few fields editable), follow it live,
cancel it (the run is saved).

Engine events update ``app.job`` as they arrive; this screen only marks itself dirty and
redraws on a timer, so a fast stream of events never floods the terminal with redraws. A job
with two training stages (ERM, then fine-tuning) draws one curve per stage: the chart follows
the running stage, ``t`` shows the other one, and the epoch table lists both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Static, TabbedContent, TabPane

from labconsole.engine.events import EpochResult, Event, Progress
from labconsole.formatting import pct
from labconsole.ui.checkpoint_names import checkpoint_label
from labconsole.ui.engine_port import PresetEntry
from labconsole.ui.screens.base import LabScreen
from labconsole.ui.widgets.choice import Choice
from labconsole.ui.widgets.form import FieldRow, parse_number
from labconsole.ui.widgets.group_chart import GroupAccuracyChart, group_abbreviations
from labconsole.ui.widgets.job_progress import JobProgress
from labconsole.ui.widgets.log_pane import LogPane

REDRAW_INTERVAL_S = 0.25  # at most 4 redraws per second, whatever the event rate
AS_PRESET = ""  # the stages value that keeps the preset's own list
STAGE_CHOICES = (("ERM", "erm"), ("ERM + fine-tune", "erm,finetune"), ("fine-tune", "finetune"))
PROFILES = (("full", False), ("smoke (seconds)", True))
STAGE_LETTER = {"erm": "E", "finetune": "F"}


def stage_choices(entry: PresetEntry | None) -> list[tuple[str, str]]:
    """The preset's own stage list first (when it has more than ERM and fine-tuning), then the
    fixed choices."""
    own = (
        []
        if entry is None or all(s in ("erm", "finetune") for s in entry.stages)
        else [("+".join(entry.stages), AS_PRESET)]
    )
    return own + list(STAGE_CHOICES)


def default_stages(entry: PresetEntry) -> str:
    trainable = ",".join(s for s in entry.stages if s in ("erm", "finetune")) or "erm"
    if any(s not in ("erm", "finetune") for s in entry.stages):
        return AS_PRESET
    return trainable if any(value == trainable for _, value in STAGE_CHOICES) else "erm"


def start_description(stages: str, entry: PresetEntry | None, checkpoint: str) -> str:
    """Which model fine-tuning starts from, for the stages chosen."""
    chosen = entry.stages if stages == AS_PRESET and entry is not None else tuple(stages.split(","))
    if "finetune" not in chosen:
        return ""
    if "erm" in chosen:
        return "fine-tuning starts from this run's ERM model (best val WGA)"
    if checkpoint:
        return f"fine-tuning starts from {checkpoint_label(checkpoint)}"
    return "fine-tuning alone needs a checkpoint: choose one on Setup (1)"


def overrides_from_form(
    epochs: str, lr: str, batch: str, seed: str, stages: str, start_checkpoint: str = ""
) -> list[str]:
    """The form's fields as ``--set`` overrides; an empty field keeps the preset's value.

    Epochs, LR and batch size belong to ERM, or to fine-tuning when it runs alone (it then
    starts from ``start_checkpoint``, the checkpoint chosen on Setup)."""
    section = "finetune" if stages == "finetune" else "erm"
    out = []
    checks = (
        (f"{section}.epochs", epochs, int),
        (f"{section}.lr", lr, float),
        (f"{section}.batch_size", batch, int),
        ("seed", seed, int),
    )
    for key, text, kind in checks:
        if text.strip():
            value = parse_number(text, kind=kind, minimum=0 if key == "seed" else 1e-12)
            if value is None:
                raise ValueError(f"{key} must be a {'whole ' if kind is int else ''}number, got {text!r}")
            out.append(f"{key}={value}")
    if stages != AS_PRESET:
        out.append("stages=[" + ", ".join(f'"{s}"' for s in stages.split(",")) + "]")
    if stages == "finetune":
        if not start_checkpoint:
            raise ValueError(
                "fine-tuning alone starts from a checkpoint: choose one on Setup (1), or pick ERM + fine-tune"
            )
        out.append(f'model.checkpoint="{start_checkpoint}"')
    return out


class TrainScreen(LabScreen):
    MODE = "train"
    BINDINGS = [
        Binding("g", "start", "Start"),
        Binding("c", "cancel", "Cancel job"),
        Binding("v", "next_view", "Chart/Epochs/Log"),
        Binding("s", "toggle_split", "val/test"),
        Binding("t", "next_stage", "Stage"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.presets: list[PresetEntry] = []
        self._progress_dirty = self._epochs_dirty = True
        self.redraws = 0
        self.chart_stage: str | None = None  # None: follow the running stage
        self.job_description = ""  # what the running (or last) job runs, fixed when it started

    def compose_body(self) -> Iterable[Widget]:
        with Horizontal(id="train-body"):
            with Vertical(id="train-form", classes="form"):
                yield FieldRow("Preset", Choice([], prompt="loading presets…", title="Preset", id="preset"))
                yield FieldRow("Stages", Choice(STAGE_CHOICES, "erm", title="Stages", id="stages"))
                yield FieldRow(
                    "Profile", Choice(PROFILES, False, title="Profile (smoke: tiny model and data)", id="profile")
                )
                yield FieldRow("Epochs", Input("", placeholder="preset", compact=True, id="epochs"))
                yield FieldRow("LR", Input("", placeholder="preset", compact=True, id="lr"))
                yield FieldRow("Batch size", Input("", placeholder="preset", compact=True, id="batch"))
                yield FieldRow("Seed", Input("", placeholder="preset", compact=True, id="seed"))
                with Horizontal(classes="buttons"):
                    yield Button("Start (g)", id="start", variant="primary", compact=True)
                    yield Button("Cancel (c)", id="cancel", variant="error", compact=True)
                error = Static("", id="form-error", classes="status-line error-text")
                error.display = False
                yield error
                yield Static("", id="preset-info", classes="detail")
            with Vertical(id="train-live"):
                yield JobProgress(show_times=not self.lab.deterministic, id="job-progress")
                with TabbedContent(id="train-views", initial="chart"):
                    with TabPane("Chart", id="chart"):
                        yield GroupAccuracyChart(id="group-chart")
                    with TabPane("Epochs", id="epochs-view"):
                        yield DataTable(id="epochs-table", cursor_type="row", zebra_stripes=True)
                        yield Static("", id="epochs-legend", classes="status-line")
                    with TabPane("Log", id="log"):
                        yield LogPane(id="train-log")

    def on_mount(self) -> None:
        self.set_interval(REDRAW_INTERVAL_S, self.redraw_if_dirty)
        self.lab.bridge.call(
            "Listing presets", self.lab.engine.list_presets, on_result=self._fill_presets, group="presets"
        )
        self.redraw_if_dirty()

    def _fill_presets(self, presets: list[PresetEntry]) -> None:
        # quickstart first: the one that runs on a laptop in minutes
        self.presets = sorted(presets, key=lambda p: (p.name != "quickstart", p.name))
        self.query_one("#preset", Choice).set_options([(p.name, p.path) for p in self.presets])
        self._show_preset()

    @on(Choice.Changed, "#preset")
    def _show_preset(self) -> None:
        entry = self.current_preset()
        if entry is None:
            return
        stages = self.query_one("#stages", Choice)
        stages.set_options(stage_choices(entry))
        stages.value = default_stages(entry)
        self._describe()

    @on(Choice.Changed, "#stages")
    def _stages_changed(self) -> None:
        self._describe()
        self._recheck()

    @on(Input.Changed, "#epochs, #lr, #batch, #seed")
    def _recheck(self) -> None:
        """A shown error goes as soon as the fields are valid again."""
        error = self.query_one("#form-error", Static)
        if not str(error.content):
            return
        epochs, lr, batch, seed = (
            self.query_one(f"#{name}", Input).value for name in ("epochs", "lr", "batch", "seed")
        )
        try:
            overrides_from_form(
                epochs, lr, batch, seed, str(self.query_one("#stages", Choice).value), self.lab.spec.checkpoint
            )
        except ValueError as exc:
            self.show_form_error(str(exc))
            return
        self.show_form_error("")

    def show_form_error(self, text: str) -> None:
        """The line under the buttons: there only while a field is wrong."""
        error = self.query_one("#form-error", Static)
        error.update(text)
        error.display = bool(text)

    def form_description(self) -> str:
        """What Start would run now: the preset, its stages as chosen, where fine-tuning starts."""
        entry = self.current_preset()
        if entry is None:
            return ""
        stages = str(self.query_one("#stages", Choice).value)
        chosen = entry.stages if stages == AS_PRESET else tuple(stages.split(","))
        lines = [entry.description, "stages: " + " → ".join(chosen)]
        start = start_description(stages, entry, self.lab.spec.checkpoint)
        if start:
            lines.append(start)
        return "\n".join(line for line in lines if line)

    def _describe(self) -> None:
        """The form's own description, or, while a job runs, what that job runs."""
        info = self.query_one("#preset-info", Static)
        if self.lab.job.active and self.lab.job.kind == "train":
            info.update(f"running: {self.lab.job.label}\n{self.job_description}".rstrip())
        else:
            info.update(self.form_description())

    def lock_form(self, locked: bool) -> None:
        """A running job's settings are fixed: the form cannot change what it is running."""
        for widget in self.query("#train-form Choice, #train-form Input"):
            widget.disabled = locked
        self._describe()

    def current_preset(self) -> PresetEntry | None:
        path = self.query_one("#preset", Choice).value
        return next((p for p in self.presets if p.path == path), None)

    # -- job control -----------------------------------------------------------------------------
    def action_start(self) -> None:
        entry = self.current_preset()
        if entry is None:
            self.notify("Choose a preset first.", severity="warning")
            return
        try:
            epochs, lr, batch, seed = (
                self.query_one(f"#{name}", Input).value for name in ("epochs", "lr", "batch", "seed")
            )
            overrides = overrides_from_form(
                epochs,
                lr,
                batch,
                seed,
                str(self.query_one("#stages", Choice).value),
                self.lab.spec.checkpoint,
            )
        except ValueError as exc:
            # on the form, until the value is fixed (a toast would outlive the fix)
            self.show_form_error(str(exc))
            return
        self.show_form_error("")
        smoke = bool(self.query_one("#profile", Choice).value)
        engine = self.lab.engine
        path = entry.path

        def work(emit: Any, cancel: Any) -> str:
            return engine.run_job(engine.load_preset(path, overrides, smoke=smoke), emit=emit, cancel=cancel)

        # fixed now: editing the form later (it is locked anyway) never rewrites what runs
        described = self.form_description().split("\n")[1:]
        settings = [o for o in overrides if not o.startswith(("stages=", "model."))]
        if settings or smoke:
            described.append(("smoke profile; " if smoke else "") + " ".join(settings))
        self.job_description = "\n".join(described)
        if self.lab.start_job("train", entry.name + (" (smoke)" if smoke else ""), work):
            self.chart_stage = None
            self._progress_dirty = self._epochs_dirty = True
            self.lab.write_log(f"[info] {entry.name}: {self.job_description}".replace("\n", "; "))
            self.lock_form(True)

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.lab.bridge.job_running:
            self.lab.cancel_job()
        else:
            self.notify("No job is running.")

    # -- live view -------------------------------------------------------------------------------
    def on_job_events(self, events: tuple[Event, ...]) -> None:
        self._progress_dirty = True
        if not events or any(not isinstance(e, Progress) for e in events):
            self._epochs_dirty = True

    def on_screen_resume(self) -> None:
        self._progress_dirty = self._epochs_dirty = True
        if self.presets and self.lab.job.active != bool(self.query_one("#epochs", Input).disabled):
            self.lock_form(self.lab.job.active)  # a job started or ended elsewhere (Runs: resume)
        elif self.presets:
            self._describe()

    def redraw_if_dirty(self) -> None:
        if not (self._progress_dirty or self._epochs_dirty):
            return
        self.redraws += 1
        job = self.lab.job
        if self._progress_dirty:
            self._progress_dirty = False
            self.query_one(JobProgress).show(job)
            self.query_one("#start", Button).disabled = job.active
            self.query_one("#cancel", Button).disabled = not job.active
            if job.active == (not self.query_one("#epochs", Input).disabled):
                self.lock_form(job.active)
        if self._epochs_dirty:
            self._epochs_dirty = False
            stage = self.shown_stage()
            self.query_one(GroupAccuracyChart).show(
                job.stage_epochs.get(stage, []),
                job.stage_best.get(stage),
                stage=stage if len(job.stage_epochs) > 1 else "",
            )
            self._fill_epochs(job.stage_epochs, job.stage_best)

    def shown_stage(self) -> str:
        """The stage whose curve the chart draws: the one picked with t, else the running one."""
        stages = self.lab.job.stage_epochs
        if self.chart_stage in stages:
            return self.chart_stage
        return self.lab.job.stage if self.lab.job.stage in stages else next(reversed(stages), "")

    def _fill_epochs(self, stage_epochs: dict[str, list[EpochResult]], best: dict[str, int]) -> None:
        """Per epoch, a row per split (train when the run measures it, val, test): every
        group's accuracy, the WGA, ★ on the selected epoch. Columns fit 80×24."""
        table = self.query_one("#epochs-table", DataTable)
        table.clear(columns=True)
        first = next((e for epochs in stage_epochs.values() for e in epochs), None)
        first_split = next(iter(first.splits.values()), None) if first else None
        groups = list(first_split.groups) if first_split is not None else []
        short = group_abbreviations(groups)
        table.add_columns("ep", "split", *(short[g] for g in groups), "WGA", "★")
        several = len(stage_epochs) > 1
        for stage, epochs in stage_epochs.items():
            for e in epochs:
                shown = [s for s in ("train", "val", "test") if s in e.splits]
                for i, split in enumerate(shown):
                    data = e.splits[split]
                    label = f"{STAGE_LETTER.get(stage, stage[:1].upper())}{e.epoch}" if several else str(e.epoch)
                    table.add_row(
                        label if i == 0 else "",
                        split,
                        *(pct(data.groups.get(g)) for g in groups),
                        pct(data.wga),
                        "★" if e.epoch == best.get(stage) and split == "val" else "",
                    )
        legend = " · ".join(f"{short[g]} {g}" for g in groups)
        stages = " · ".join(f"{STAGE_LETTER.get(s, s[:1].upper())} = {s}" for s in stage_epochs) if several else ""
        losses = [e for epochs in stage_epochs.values() for e in epochs if e.train_loss is not None]
        loss = f"last train loss {losses[-1].train_loss:.4f}" if losses else ""
        self.query_one("#epochs-legend", Static).update(
            " · ".join(p for p in (legend, stages, "★ selected (best val WGA)" if groups else "", loss) if p)
        )

    def action_next_stage(self) -> None:
        stages = list(self.lab.job.stage_epochs)
        if len(stages) < 2:
            self.notify("Only one training stage so far.")
            return
        self.chart_stage = stages[(stages.index(self.shown_stage()) + 1) % len(stages)]
        self._epochs_dirty = True
        self.redraw_if_dirty()

    def action_next_view(self) -> None:
        tabs = self.query_one("#train-views", TabbedContent)
        current = {"chart": 0, "epochs-view": 1, "log": 2}.get(tabs.active, 0)
        tabs.active = ("chart", "epochs-view", "log")[(current + 1) % 3]

    def action_toggle_split(self) -> None:
        chart = self.query_one(GroupAccuracyChart)
        chart.split = "test" if chart.split == "val" else "val"
        self._epochs_dirty = True
        self.redraw_if_dirty()
