"""Setup: which dataset, backbone, checkpoint and device the interactive session uses."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from textual import on
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Input, Static

from labconsole.ui.bridge import describe_error
from labconsole.ui.checkpoint_names import checkpoint_label, run_dir_of
from labconsole.ui.engine_port import (
    BACKBONES,
    DATASETS,
    DEVICES,
    EMBEDDED_DATASETS,
    DatasetCheck,
    LayerInfo,
    RunDetails,
    RunEntry,
    SessionPort,
    SessionSpec,
)
from labconsole.ui.screens.base import LabScreen
from labconsole.ui.widgets.busy_line import BusyLine
from labconsole.ui.widgets.choice import Choice
from labconsole.ui.widgets.form import FieldRow

FRESH = "(fresh weights)"


def checkpoint_options(runs: list[RunEntry]) -> list[tuple[str, str]]:
    """Every checkpoint of every run, by name (``best``, ``last``, ``epoch_003``,
    ``finetune-best``, …): a fine-tune-only run has no ``best`` and opens from its own."""
    options = [(FRESH, "")]
    for run in runs:
        names = run.checkpoints or (("best",) if run.has_checkpoint else ())
        for name in names:
            options.append((f"{run.name} · {name} ({run.status})", run.checkpoint_path(name)))
    return options


def run_model_and_data(info: RunDetails) -> tuple[str, str]:
    """(backbone, dataset) of a run: its resolved config.toml, else its manifest."""
    import tomllib

    try:
        config = tomllib.loads(info.config)
    except tomllib.TOMLDecodeError:
        config = {}
    manifest = info.manifest
    dataset = config.get("data", {}).get("dataset") or (manifest.dataset.name if manifest.dataset else "")
    return str(config.get("model", {}).get("backbone") or manifest.backbone or ""), str(dataset)


def manifest_line(info: RunDetails) -> str:
    manifest = info.manifest
    backbone, dataset = run_model_and_data(info)
    parts = []
    if manifest.preset:
        parts.append(f"preset {manifest.preset}" + (" (smoke)" if manifest.smoke else ""))
    if backbone or dataset:
        parts.append(" on ".join(p for p in (backbone, dataset) if p))
    if manifest.stages_done:
        parts.append("stages done: " + ", ".join(manifest.stages_done))
    for key, value in (
        ("variant", manifest.variant),
        ("device", manifest.device),
        ("selection", manifest.selection_rule),
    ):
        if value:
            parts.append(f"{key} {value}")
    selection = info.summary.selection
    if selection is not None and selection.epoch is not None:
        parts.append(f"selected epoch {selection.epoch}")
    return " · ".join(parts) or "no manifest.json in this run"


class SetupScreen(LabScreen):
    MODE = "setup"
    BINDINGS = [
        Binding("o", "open_session", "Open session"),
        Binding("c", "check_dataset", "Check data"),
        Binding("r", "refresh_runs", "Refresh runs"),
    ]

    def compose_body(self) -> Iterable[Widget]:
        spec = self.lab.spec
        with VerticalScroll(id="setup-form", classes="form"):
            yield FieldRow(
                "Dataset",
                Choice([(label, value) for value, label in DATASETS], spec.dataset, title="Dataset", id="dataset"),
            )
            yield FieldRow(
                "Data root",
                Input(
                    spec.data_root,
                    placeholder="folder with the dataset (or $LABCONSOLE_DATA)",
                    compact=True,
                    id="data-root",
                ),
            )
            # Lines under a field are indented by the label width rather than wrapped in a row
            # with an empty label: fewer widgets to style before the first paint.
            yield Static("", id="data-check", classes="status-line sub")
            yield FieldRow(
                "Backbone", Choice([(b, b) for b in BACKBONES], spec.backbone, title="Backbone", id="backbone")
            )
            yield FieldRow(
                "Checkpoint",
                Choice([(FRESH, "")], "", title="Checkpoint: a run from the runs folder", id="checkpoint-run"),
            )
            yield FieldRow(
                "  or file",
                Input(
                    spec.checkpoint,
                    placeholder="path to a .safetensors or run folder",
                    compact=True,
                    id="checkpoint-path",
                ),
            )
            yield Static("", id="manifest", classes="status-line sub")
            yield FieldRow("Device", Choice([(d, d) for d in DEVICES], spec.device, title="Device", id="device"))
            yield Button("Open session (o)", id="open", variant="primary", compact=True, classes="sub")
            yield BusyLine(
                "No session open.",
                show_clock=not self.lab.deterministic,
                id="session-status",
                classes="status-line sub",
            )

    def on_mount(self) -> None:
        self.query_one("#dataset", Choice).focus()
        # After the first paint: listing runs touches the disk and imports part of the engine.
        self.lab.after_first_paint(self.action_refresh_runs)
        self.lab.after_first_paint(self.action_check_dataset)

    # -- reading the form ---------------------------------------------------------------------
    def current_spec(self) -> SessionSpec:
        checkpoint = self.query_one("#checkpoint-path", Input).value.strip()
        return SessionSpec(
            dataset=str(self.query_one("#dataset", Choice).value),
            data_root=self.query_one("#data-root", Input).value.strip(),
            backbone=str(self.query_one("#backbone", Choice).value),
            checkpoint=checkpoint,
            device=str(self.query_one("#device", Choice).value),
        )

    def _remember(self) -> None:
        self.lab.spec = self.current_spec()

    @on(Choice.Changed, "#dataset")
    def _dataset_changed(self) -> None:
        self._remember()
        self.action_check_dataset()

    @on(Choice.Changed, "#backbone, #device")
    @on(Input.Changed, "#data-root")
    def _field_changed(self) -> None:
        self._remember()

    @on(Input.Submitted, "#data-root")
    def _root_submitted(self) -> None:
        self.action_check_dataset()

    # -- dataset check ------------------------------------------------------------------------
    def action_check_dataset(self) -> None:
        spec = self.current_spec()
        status = self.query_one("#data-check", Static)
        if spec.dataset in EMBEDDED_DATASETS:
            status.update(f"✓ {spec.dataset} is embedded: no files needed")
            return
        status.update("checking…")
        self.lab.bridge.call(
            "Dataset check",
            self.lab.engine.check_dataset,
            spec.data_root,
            spec.dataset,
            on_result=self._show_check,
            group="dataset-check",
        )

    def _show_check(self, check: DatasetCheck) -> None:
        lines = [("✓ " if check.ok else "✗ ") + check.message]
        for split, groups in check.counts.items():
            cells = [
                f"{g} {found}" + ("" if expected in (None, found) else f"≠{expected}")
                for g, (found, expected) in groups.items()
            ]
            lines.append(f"  {split}: " + ", ".join(cells))
        status = self.query_one("#data-check", Static)
        status.set_class(not check.ok, "error-text")
        status.update("\n".join(lines))

    # -- checkpoints ---------------------------------------------------------------------------
    def action_refresh_runs(self) -> None:
        self.lab.bridge.call(
            "Listing runs", self.lab.engine.list_runs, self.lab.runs_root, on_result=self._fill_runs, group="setup-runs"
        )

    def _fill_runs(self, runs: list[RunEntry]) -> None:
        select = self.query_one("#checkpoint-run", Choice)
        options = checkpoint_options(runs)
        current = self.query_one("#checkpoint-path", Input).value.strip()
        with self.prevent(Choice.Changed):
            select.set_options(options)
            select.value = current if any(value == current for _, value in options) else ""

    @on(Choice.Changed, "#checkpoint-run")
    def _checkpoint_chosen(self, event: Choice.Changed) -> None:
        path = str(event.value or "")
        self.query_one("#checkpoint-path", Input).value = path
        self._remember()
        manifest = self.query_one("#manifest", Static)
        if not path:
            manifest.update("")
            return
        manifest.update("reading manifest…")
        self.lab.bridge.call(
            "Reading the run manifest",
            self.lab.engine.run_summary,
            run_dir_of(path),
            on_result=self._show_run,
            group="setup-manifest",
            on_error=lambda error: manifest.update(f"✗ {describe_error('reading the run', error)}"),
        )

    def _show_run(self, info: RunDetails) -> None:
        """The run's manifest, and its backbone and dataset in the form: a checkpoint decides both."""
        self.query_one("#manifest", Static).update(manifest_line(info))
        backbone, dataset = run_model_and_data(info)
        for field, value in (("#backbone", backbone), ("#dataset", dataset)):
            choice = self.query_one(field, Choice)
            if any(value == v for _, v in choice.options):
                choice.value = value

    @on(Input.Changed, "#checkpoint-path")
    def _checkpoint_typed(self) -> None:
        self._remember()

    # -- session -------------------------------------------------------------------------------
    @on(Button.Pressed, "#open")
    def action_open_session(self) -> None:
        spec = self.current_spec()
        self.lab.spec = spec
        status = self.query_one("#session-status", BusyLine)
        model = spec.checkpoint.rsplit("/", 1)[-1] if spec.checkpoint else f"fresh {spec.backbone}"
        worker = self.lab.bridge.call(
            "Opening the session",
            self.lab.engine.open_session,
            spec,
            on_result=self._session_opened,
            group="session",
            on_error=self._session_failed,
            on_given_up=self._open_given_up,
        )
        status.begin(
            f"opening {model} on {spec.dataset}: loading the model and data",
            worker,
            total=2,
            stop_text="cancelling the open: the engine stops at its next chunk…",
        )

    def _open_given_up(self, error: BaseException | None) -> None:
        """The cancelled open has really stopped (the engine checks between chunks of its work)."""
        status = self.query_one("#session-status", BusyLine)
        if status.busy:  # another open has started since
            return
        # The engine's Cancelled, if its module is loaded (whatever raised it loaded it); never
        # imported here, which would load torch on the UI thread.
        context = sys.modules.get("labconsole.engine.context")
        if error is None:
            text = "cancelled: the open had finished already; that session is dropped"
        elif context is not None and isinstance(error, context.Cancelled):
            text = "cancelled: no session opened (the engine stopped between chunks; nothing half-written)"
        else:
            text = "cancelled: " + describe_error("the open stopped with an error", error)
        status.finish(text)
        self.lab.write_log(f"[info] session open {text}")

    def _session_failed(self, error: BaseException) -> None:
        self.query_one("#session-status", BusyLine).finish(
            "✗ " + describe_error("the session did not open", error), error=True
        )

    def _session_opened(self, session: SessionPort) -> None:
        status = self.query_one("#session-status", BusyLine)
        worker = self.lab.bridge.call(
            "Listing the layers",
            session.layers,
            on_result=lambda layers: self._layers_listed(session, layers),
            group="session",
            on_error=self._session_failed,
        )
        status.worker = worker
        status.advance(2, "listing the model's layers")

    def _layers_listed(self, session: SessionPort, layers: list[LayerInfo]) -> None:
        self.lab.set_session(session, layers)
        total = sum(layer.neurons for layer in layers)
        model = checkpoint_label(self.lab.spec.checkpoint) if self.lab.spec.checkpoint else "fresh weights"
        text = (
            f"✓ session ready on {model}: {len(layers)} layers, {total} neurons; groups "
            + ", ".join(session.group_names)
            + ". Press 2 for Neurons."
        )
        self.query_one("#session-status", BusyLine).finish(text)
        spec = self.lab.spec
        self.lab.write_log(
            f"[info] session opened: {spec.checkpoint or 'fresh ' + spec.backbone} on {spec.dataset} "
            f"({len(layers)} layers, {total} neurons)"
        )
        self.notify("Session ready. Press 2 to rank neurons.")
