"""The narrow interface the console needs from the engine, and the value types it returns.

Screens only ever talk to an ``EnginePort`` (and the ``SessionPort`` it opens), never to the
engine modules directly. Tests and screenshots inject ``FakeEngine``; the real adapter lives in
``labconsole.ui.real_engine`` and is imported lazily so that neither torch nor the engine is
imported before the first screen is painted.

Every method may block (seconds to hours): the console calls them from thread workers only
(``labconsole.ui.bridge``). Bad input raises ``labconsole.errors.UserError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from labconsole.config import vocab
from labconsole.engine.events import CancelToken, Emit, EpochResult
from labconsole.errors import UserError

if TYPE_CHECKING:  # pydantic models; imported lazily at run time
    from labconsole.engine.records import Manifest, Readout, RunSummary
    from labconsole.presets import Preset

DATASETS: tuple[tuple[str, str], ...] = (
    ("synthetic-waterbirds", "Synthetic Waterbirds (embedded)"),
    ("waterbirds", "Waterbirds"),
    ("celeba", "CelebA (Blond_Hair × Male)"),
    ("digits", "Rare-pattern digits (embedded)"),
)
EMBEDDED_DATASETS = frozenset({"synthetic-waterbirds", "digits", "digits-color"})
# The console offers the product's vocabulary (labconsole.config.vocab), under its own names.
BACKBONES: tuple[str, ...] = vocab.BACKBONES
DEVICES: tuple[str, ...] = vocab.DEVICES
CRITERIA: tuple[str, ...] = vocab.CRITERIA
SCOPES: tuple[str, ...] = vocab.SCOPES
INTERVENTION_MODES: tuple[str, ...] = vocab.MODES
SIGMAS: tuple[float, ...] = vocab.SIGMA_GRID
RARE_PATTERNS: tuple[str, ...] = vocab.PATTERNS

# (layer name, neuron index, score), best first.
RankedNeuron = tuple[str, int, float]
# (layer name, neuron index).
NeuronRef = tuple[str, int]
# An image as rows × cols of (red, green, blue), 0–255.
RGB = tuple[int, int, int]
ImagePixels = list[list[RGB]]
# The ranking scores a group ranking can use: the paper's own, or the specificity score.
RANK_SCORES: tuple[str, ...] = ("paper", "specific")


class EngineUnavailable(UserError):
    """The engine in this installation does not offer a function the console asked for."""


@dataclass(frozen=True)
class PresetEntry:
    name: str  # e.g. "quickstart" or "official-code/table3"
    path: str
    description: str = ""
    stages: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerInfo:
    name: str  # module path, e.g. "layer2.0.conv1"
    kind: str  # "conv" | "linear"
    neurons: int  # output channels (conv) or output features (linear)


@dataclass(frozen=True)
class DatasetCheck:
    ok: bool
    message: str  # one line: what was found, or which file/column is missing
    # split -> group name -> (found, expected or None)
    counts: dict[str, dict[str, tuple[int, int | None]]] = field(default_factory=dict)


@dataclass(frozen=True)
class RunEntry:
    name: str
    path: str
    status: str  # "done" | "running" | "cancelled" | "failed" | "empty"
    preset: str = ""
    variant: str = "paper"
    test_wga: float | None = None  # test WGA of the run's final model (fraction)
    has_checkpoint: bool = False
    smoke: bool = False  # trained on the smoke profile (tiny model and data): not a result
    # checkpoint names in checkpoints/ (``best``, ``last``, ``epoch_003``, ``finetune-best``, …)
    checkpoints: tuple[str, ...] = ()
    final_stage: str = ""  # the stage whose model ``test_wga`` measures ("erm", "finetune", …)

    def checkpoint_path(self, name: str) -> str:
        return f"{self.path}/checkpoints/{name}.safetensors"

    @property
    def resumable(self) -> bool:
        """Interrupted: cancelled, failed, or still marked running by a process that is gone."""
        return self.status in ("cancelled", "failed", "running")


@dataclass(frozen=True)
class RunDetails:
    """One run directory read through the engine's records: what Runs and Setup show of it."""

    name: str
    path: str
    status: str  # as ``RunEntry.status``
    manifest: Manifest
    summary: RunSummary
    config: str = ""  # the resolved config.toml ("" when there is none)


@dataclass(frozen=True)
class RareScorePoint:
    """Paper B: the spurious score (and accuracies, fractions) with ``n`` spurious examples,
    mean over seeds; ``spurious_score_se`` its standard error, ``p_value`` its test against n = 0."""

    n: int
    spurious_score: float | None
    spurious_score_se: float | None = None
    clean_acc: float | None = None
    spurious_acc: float | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class SessionSpec:
    """What the Setup screen chose: everything needed to open an interactive session."""

    dataset: str = "synthetic-waterbirds"
    data_root: str = ""
    backbone: str = "cifar_resnet8"
    checkpoint: str = ""  # a run directory or a checkpoint file; "" = fresh weights
    device: str = "auto"


class SessionPort(Protocol):
    """A model + its cached data kept warm between interactive calls (Neurons, Interventions)."""

    group_names: tuple[str, ...]
    # Training-split size of each group; the smaller half are the minority groups.
    train_group_counts: dict[str, int]

    def layers(self) -> list[LayerInfo]: ...

    def rank(
        self,
        criterion: str,
        group: str | None,
        scope: str,
        k: float,
        score: str = "paper",
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[RankedNeuron]:
        """Critical neurons, best first. ``group`` is a group name (None = all groups; the
        magnitude criterion ignores it). ``k`` is a count, or a percentage for top-percent.
        ``score``: "paper" (the group's own score) or "specific" (the group's score relative to
        the other groups', each over its layer's mean: needs a group and criterion gradient or
        activation; anything else raises ``UserError``). ``progress(done, total)`` is called
        from the calling thread as groups are scored."""
        ...

    def readout(
        self,
        neurons: Sequence[NeuronRef],
        mode: str,
        std: float,
        seeds: int,
        splits: Sequence[str] = ("train", "test"),
        control: bool = False,
        *,
        progress: Callable[[int, int], None] | None = None,
        on_estimate: Callable[[Readout], None] | None = None,
    ) -> Readout:
        """Per-group accuracy after the intervention (the model is restored afterwards).
        ``progress(done, total)`` is called from the calling thread per chunk of the split walk.

        Returns the engine's ``records.Readout``: per split a ``ReadoutSplit`` (``baseline`` /
        ``after`` accuracies as fractions, ``delta_pp`` / ``spread_pp`` in percentage points,
        spread = std over seeds, 0 for zero mode), ``control`` the same per split for as many
        random neurons (None without one), ``wga_quantum_pp`` per split. ``on_estimate`` first
        gets the progressive estimate: the same record, ``is_estimate``, ``ci_pp`` per group.
        """
        ...

    def random_neurons(self, count: int, seed: int) -> list[NeuronRef]:
        """``count`` distinct neurons drawn uniformly from every eligible layer (the same set for
        the same seed): a control set to compare a ranking against."""
        ...

    def matched_control(
        self,
        readout: Readout,
        draws: int = 20,
        first_draws: int = 3,
        *,
        on_partial: Callable[[Readout], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Readout:
        """``readout`` (this session's readout of an intervention) with its layer-matched control
        (``engine.stage1.evidence``): ``draws`` neuron sets with the critical set's per-layer
        histogram, the same edit on each, walked once, in batches of ``first_draws``.

        Returns the readout with the control in ``control`` (per split mean ± sd over the draws),
        each draw's neurons in ``control_neurons``, ``control_kind`` "layer-matched" and
        ``evidence`` (a ``records.Evidence``): the critical Δ, p per split and group (the
        empirical one-sided ``(1 + #draws at least as low) / (draws + 1)``), the signature with
        its verdict, and the flips (ids are positions in the split). ``on_partial`` gets the same
        over the draws walked so far: after the first ``first_draws``, then as more are in (at
        most a few times a second, never for the last batch: that is the result); draw d is the
        same set in every one. ``progress(draws walked, draws)`` is called from the calling
        thread."""
        ...

    def example_images(self, split: str, ids: Sequence[int], size: int) -> list[ImagePixels]:
        """The images of ``split`` at positions ``ids`` (as flips list them), each resized to
        ``size`` × ``size`` pixels."""
        ...

    def close(self) -> None: ...


class EnginePort(Protocol):
    def list_presets(self) -> list[PresetEntry]: ...

    def load_preset(self, path: str, overrides: Sequence[str] = (), *, smoke: bool = False) -> Preset:
        """The preset with ``--set`` overrides; ``smoke`` = the tiny profile (minutes → seconds)."""
        ...

    def run_job(self, preset: Preset, *, emit: Emit, cancel: CancelToken) -> str:
        """Run a preset to the end (or until ``cancel`` is set); returns the run directory.
        Emits RunStarted … RunFinished; on cancel the run is saved and finishes "cancelled"."""
        ...

    def resume_job(self, run_dir: str, *, emit: Emit, cancel: CancelToken) -> str:
        """Continue an interrupted run in its own directory, with the preset it was started
        with (its ``config.toml``): finished stages are skipped, training goes on after the last
        finished epoch. Raises ``UserError`` for a run that is done or not a run."""
        ...

    def open_session(self, spec: SessionSpec) -> SessionPort: ...

    def check_dataset(self, root: str, dataset: str) -> DatasetCheck: ...

    def list_runs(self, root: str) -> list[RunEntry]: ...

    def run_summary(self, run_dir: str) -> RunDetails:
        """The run's manifest, summary and config; ``UserError`` for a path that is not a run,
        ``records.RunFormatError`` naming a file that cannot be read."""
        ...

    def run_epochs(self, run_dir: str) -> list[EpochResult]:
        """Every epoch a run recorded in its ``metrics.jsonl``, over all its attempts (a resumed
        run continues the same file), in order; a re-run epoch keeps its latest record."""
        ...

    def export_report(self, run_dir: str) -> list[str]:
        """Write the run's report files; returns their paths."""
        ...

    def rare_preview(self, pattern: str, image_size: int) -> list[list[float]]:
        """A training image with the pattern applied, greyscale in [0, 1], rows × cols."""
        ...

    def rare_experiment(
        self,
        pattern: str,
        counts: Sequence[int],
        target_class: int,
        seeds: int,
        *,
        emit: Emit,
        cancel: CancelToken,
    ) -> list[RareScorePoint]:
        """Paper B: train with n spurious examples for each n in ``counts``; one point per n."""
        ...

    def theory_curve(
        self,
        gammas: Sequence[float],
        *,
        sigma_inv: float,
        sigma_sp: float,
        ridge: float,
        x_inv: float = 1.0,
        x_sp: float = 1.0,
    ) -> dict[str, list[float]]:
        """Paper B §5 ridge-regression optimum per γ: ``{"gamma", "clean_acc", "spurious_acc",
        "prediction_difference"}`` (lists of equal length)."""
        ...


def create_real_engine(runs_root: str = "runs") -> EnginePort:
    """The adapter over ``labconsole.engine``; imported here, on first use, not at start-up."""
    from labconsole.ui.real_engine import RealEngine

    return RealEngine(runs_root)
