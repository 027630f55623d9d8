"""``Session``: a model, its cached splits and baseline readouts kept warm between calls.

The console (Neurons and Interventions screens), the ``rank`` / ``intervene`` commands and the
Stage I pipeline stages all go through this object::

    session = Session.from_checkpoint("runs/…-quickstart-s0", device="cpu")
    session.layers()                      # [("conv1", "conv", 16), ("layer1.0.conv1", "conv", 16), …]
    top = session.rank("gradient", group="waterbird-land", k=3)   # [(layer, index, score), …]
    result = session.readout([(l, i) for l, i, _ in top], mode="zero")   # a records.Readout
    result.splits["train"].delta_pp["waterbird-land"]            # change in pp vs the baseline

Every readout leaves the model's weights bit-for-bit as they were (see ``interventions``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from labconsole.config.neurons import NeuronsConfig
from labconsole.engine.data.cache import TensorCache
from labconsole.engine.data.groups import DatasetBundle
from labconsole.engine.device import resolve_device
from labconsole.engine.events import CancelToken, NeverCancelled
from labconsole.engine.records.sections import Readout
from labconsole.engine.stage1 import progressive, session_rank
from labconsole.engine.stage1 import ranking as rk
from labconsole.engine.stage1 import session_baselines as baselines
from labconsole.engine.stage1 import session_controls as controls
from labconsole.engine.stage1 import session_walk as walk
from labconsole.engine.stage1.call_progress import CallProgress
from labconsole.engine.stage1.fast_eval import FastSplitEvaluator
from labconsole.engine.stage1.folding import FoldedModel, fold_batchnorm
from labconsole.engine.stage1.interventions import Intervention, apply_intervention, touched_modules
from labconsole.engine.stage1.neurons import Layer, NeuronRef, eligible_layers, following_norms
from labconsole.engine.stage1.readout import SplitEvaluator, group_accuracy
from labconsole.engine.stage1.run_baselines import BaselineStore
from labconsole.engine.stage1.run_data_cache import data_key
from labconsole.engine.stage1.session_open import auto_cut_budget, fresh_model_and_data, load_checkpoint_and_data
from labconsole.errors import UserError


class Session:
    """Interactive Stage I on one model and one dataset.

    ``Session(model, bundle, device)`` or ``Session.from_checkpoint(path_or_run_dir, device)``.
    Attributes: ``group_names`` (tuple), ``train_group_counts`` ({group: n}), ``config``
    (NeuronsConfig: eligible layers, sample sizes, batch size, cut-cache budget).
    ``baselines``: where the unmodified model's logits are kept between sessions (a run
    directory's store; None keeps them in memory only).
    """

    def __init__(
        self,
        model: nn.Module,
        bundle: DatasetBundle,
        device: torch.device | str = "cpu",
        *,
        config: NeuronsConfig | None = None,
        cancel: CancelToken | None = None,
        seed: int = 0,
        estimate_cap: int = 64,
        baselines: BaselineStore | None = None,
    ):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":  # faster bf16 convolutions; weight edits are layout-agnostic
            self.model = self.model.to(memory_format=torch.channels_last)
        self.bundle = bundle
        self.config = config or NeuronsConfig()
        self.cancel: CancelToken = cancel or NeverCancelled()
        self.seed = seed
        self.group_names: tuple[str, ...] = tuple(bundle.groups.group_names)
        counts = bundle.split("train").group_counts(bundle.groups.num_groups) if "train" in bundle.splits else []
        self.train_group_counts: dict[str, int] = dict(zip(self.group_names, counts))
        cfg = self.config
        self._layers: list[Layer] = eligible_layers(self.model, cfg.include, cfg.exclude, cfg.include_head)
        self._by_name = {layer.name: layer for layer in self._layers}
        self._caches: dict[str, TensorCache] = {}
        self._evaluators: dict[str, SplitEvaluator] = {}
        self._baselines: dict[str, list[float | None]] = {}
        self._scores: dict[tuple[str, str | None, str], rk.Scores] = {}
        self._samples: dict[str | None, torch.Tensor] = {}
        self._controls: dict[controls.ControlKey, Readout] = {}
        self._norms_after: dict[str, str] | None = None
        # Eval fast path: BN folded into a traced copy; splits walked "subsample, then the rest".
        self.estimate_cap = int(estimate_cap)
        self._folded: FoldedModel | None = None
        self._folded_tried = False
        self._fast_evals: dict[str, FastSplitEvaluator] = {}
        self._base_correct: dict[str, torch.Tensor] = {}  # split -> bool per example, fast order
        self._train_losses: torch.Tensor | None = None  # CE per training example (split order)
        self._base_logits: dict[str, torch.Tensor] = {}  # split -> logits of the folded model (split order)
        self._store = baselines
        self._store_bound = False

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls,
        path_or_run_dir: str | Path,
        device: torch.device | str = "cpu",
        *,
        data_root: str | None = None,
        config: NeuronsConfig | None = None,
        cancel: CancelToken | None = None,
        run_cache: bool = True,
        progress: Callable[[str], None] | None = None,
    ) -> Session:
        """Load a checkpoint (file or run directory). The dataset comes from the run's
        ``config.toml`` (so the embedded data is rebuilt exactly), else from the sidecar's
        ``dataset`` and ``image_size`` plus ``data_root``. With ``run_cache`` the decoded data
        kept in the run directory is read instead of rebuilt (and written there on a first
        open). ``progress`` receives one line per step ("loading the dataset", …)."""
        opened = load_checkpoint_and_data(
            path_or_run_dir, device, data_root=data_root, run_cache=run_cache, progress=progress, cancel=cancel
        )
        store = BaselineStore(opened.run_dir, data_key(opened.data_config)) if run_cache else None
        return cls(
            opened.model,
            opened.bundle,
            device,
            config=config or opened.neurons,
            cancel=cancel,
            seed=opened.seed,
            baselines=store,
        )

    @classmethod
    def open(
        cls,
        *,
        dataset: str = "synthetic-waterbirds",
        data_root: str = "",
        backbone: str = "cifar_resnet8",
        checkpoint: str = "",
        device: str = "auto",
        cancel: CancelToken | None = None,
    ) -> Session:
        """What the console's Setup screen asks for: a checkpoint, or fresh weights on a dataset.
        ``cancel`` is checked between chunks of the opening (``Cancelled`` once it is set)."""
        resolved = resolve_device(device)
        if checkpoint:
            return cls.from_checkpoint(checkpoint, resolved, data_root=data_root or None, cancel=cancel)
        model, bundle = fresh_model_and_data(dataset, data_root, backbone, cancel)
        return cls(model, bundle, resolved, cancel=cancel)

    # -- what there is ---------------------------------------------------------------------------
    def layers(self) -> list[tuple[str, str, int]]:
        """Eligible layers as ``(name, kind, n_neurons)``; kind is "conv" or "linear"."""
        return [layer.as_tuple() for layer in self._layers]

    def cache(self, split: str) -> TensorCache:
        if split not in self._caches:
            self._caches[split] = TensorCache.from_split(self.bundle.split(split), self.bundle, self.device)
        return self._caches[split]

    def folded(self) -> FoldedModel | None:
        """The BN-folded eval copy of the model (None: the plain path only, e.g. untraceable)."""
        if not self._folded_tried:
            self._folded_tried = True
            self._folded = fold_batchnorm(self.model) if self.config.fast_path else None
            if self._folded is not None and self.device.type == "cuda":
                self._folded.graph.to(memory_format=torch.channels_last)
        return self._folded

    def fast_evaluator(self, split: str) -> FastSplitEvaluator | None:
        """The folded, progressive evaluator of ``split`` (None without the fast path)."""
        folded = self.folded()
        if folded is None:
            return None
        if split not in self._fast_evals:
            cache = self.cache(split)
            order, n_sample = progressive.stratified_order(
                cache.g, len(self.group_names), self.estimate_cap, self.config.sample_seed
            )
            self._fast_evals[split] = FastSplitEvaluator(
                folded,
                cache,
                order,
                n_sample,
                batch_size=self.config.batch_size,
                budget_bytes=int(self.config.cut_cache_mb) * (1 << 20) or auto_cut_budget(self.device),
            )
        return self._fast_evals[split]

    def evaluator(self, split: str) -> SplitEvaluator:
        if split not in self._evaluators:
            budget = int(self.config.cut_cache_mb) * (1 << 20) or auto_cut_budget(self.device)
            self._evaluators[split] = SplitEvaluator(
                self.model,
                self.cache(split),
                batch_size=self.config.batch_size,
                budget_bytes=budget,
                use_cuts=self.config.fast_path,
            )
        return self._evaluators[split]

    def baseline(self, split: str) -> dict[str, float | None]:
        """Per-group accuracy of the unmodified model on ``split`` (computed once)."""
        return dict(zip(self.group_names, self._baseline(split)))

    def wga_quantum_pp(self, split: str) -> float | None:
        counts = [c for c in self.bundle.split(split).group_counts(self.bundle.groups.num_groups) if c]
        return 100.0 / min(counts) if counts else None

    # -- ranking ---------------------------------------------------------------------------------
    def resolve_group(self, group: str | int | None) -> str | None:
        if group is None or group == "":
            return None
        return self.group_names[self.bundle.groups.resolve(group)]

    def scores(self, criterion: str, group: str | int | None = None, norm: str = "l2") -> rk.Scores:
        """Score of every eligible neuron, per layer (cached per criterion/group/norm)."""
        rk.check_criterion(criterion)
        rk.check_norm(norm)
        name = None if criterion == "magnitude" else self.resolve_group(group)
        key = (criterion, name, norm)
        if key not in self._scores:
            self._scores[key] = session_rank.compute_scores(self, criterion, name, norm)
        return self._scores[key]

    def samples_for(self, group: str | None) -> torch.Tensor:
        """Training indices S_g the gradient/activation scores of ``group`` use (None = all)."""
        if group not in self._samples:
            index = None if group is None else self.group_names.index(group)
            if self.fast_evaluator("train") is not None:
                self._baseline("train")  # its pass gives every example's loss: no second pass
            self._samples[group] = rk.select_gradient_samples(
                self.model,
                self.cache("train"),
                index,
                worst=self.config.worst_samples,
                sampled=self.config.sampled,
                seed=self.config.sample_seed,
                batch_size=self.config.batch_size,
                losses=self._train_losses,
            )
        return self._samples[group]

    def ranking(
        self,
        criterion: str,
        group: str | int | None = None,
        scope: str = "global",
        k: float = 10,
        norm: str = "l2",
        per_layer_normalise: bool = False,
        layers: Sequence[str] | None = None,
        score: str = "paper",
        progress: CallProgress | None = None,
    ) -> rk.Ranking:
        """A ``Ranking`` (neurons + the training samples used). ``layers`` restricts the ranking
        to some eligible layers (structured tracing ranks one layer at a time). ``score``:
        "paper" (the group's own score) or "specific" (``ranking.specificity_scores``).
        ``progress`` gets (groups scored, groups needed), ≤ ~10×/s."""
        scope = rk.normalise_scope(scope)
        if score not in ("paper", "specific"):
            raise UserError(f"neurons.score = {score!r}: expected paper or specific")
        if progress is not None:
            session_rank.score_groups(self, criterion, group, norm, score, progress)
        scores = (
            self.specific_scores(criterion, group, norm) if score == "specific" else self.scores(criterion, group, norm)
        )
        if per_layer_normalise:
            scores = rk.normalise_per_layer(scores)
        names = [layer.name for layer in self._layers]
        if layers is not None:
            unknown = [n for n in layers if n not in self._by_name]
            if unknown:
                raise UserError(f"unknown layer {unknown[0]!r} (eligible: {', '.join(names[:12])}…)")
            names = list(layers)
        neurons = rk.top_neurons(scores, scope, k, names)
        group_name = None if criterion == "magnitude" else self.resolve_group(group)
        used: dict[str, tuple[int, ...]] = {}
        if criterion != "magnitude":
            used[group_name or "all"] = tuple(int(i) for i in self.samples_for(group_name).tolist())
        return rk.Ranking(
            criterion, group_name, scope, float(k), norm, per_layer_normalise, tuple(neurons), used, score=score
        )

    def specific_scores(self, criterion: str, group: str | int | None, norm: str = "l2") -> rk.Scores:
        """The group's score relative to the same neuron's score on every other group with
        training examples, each normalised by its layer's mean."""
        name = self.resolve_group(group)
        if criterion == "magnitude" or name is None:
            raise UserError(
                "the specificity score compares one group's gradient or activation score with the other "
                "groups': give a group and criterion gradient or activation"
            )
        others = [g for g in self.group_names if g != name and self.train_group_counts.get(g)]
        return rk.specificity_scores(
            self.scores(criterion, name, norm), [self.scores(criterion, g, norm) for g in others]
        )

    def rank(
        self,
        criterion: str,
        group: str | int | None = None,
        scope: str = "global",
        k: float = 10,
        norm: str = "l2",
        per_layer_normalise: bool = False,
    ) -> list[tuple[str, int, float]]:
        """``[(layer, index, score), …]`` best first. ``scope``: "global" (top-k over the model),
        "per-layer"/"layer" (top-k in each layer) or "top-percent" (k = a percentage)."""
        return list(self.ranking(criterion, group, scope, k, norm, per_layer_normalise).neurons)

    def random_neurons(self, count: int, seed: int) -> list[NeuronRef]:
        """``count`` distinct neurons drawn uniformly from all eligible neurons (seeded)."""
        owners = [(layer.name, i) for layer in self._layers for i in range(layer.n_neurons)]
        if count > len(owners):
            raise UserError(f"{count} random neurons requested, the model has {len(owners)} eligible neurons")
        pick = torch.randperm(len(owners), generator=torch.Generator().manual_seed(int(seed)))[:count]
        return [owners[j] for j in pick.tolist()]

    # -- readouts --------------------------------------------------------------------------------
    def accuracy_after(self, split: str, intervention: Intervention) -> list[float | None]:
        """Per-group accuracy (list, group order) with ``intervention`` applied; restored after."""
        cache = self.cache(split)
        norms = self.norms_after() if intervention.where == "post-bn" else {}
        start = touched_modules(intervention, self._by_name, norms)
        with apply_intervention(self.model, self._by_name, intervention, norms):
            pred = self.evaluator(split).predictions(start, self.cancel)
        return group_accuracy(pred, cache.y, cache.g, self.bundle.groups.num_groups)

    def readout(
        self,
        neurons: Sequence[NeuronRef],
        mode: str = "zero",
        std: float = 0.01,
        seeds: int = 10,
        splits: Sequence[str] = ("train", "test"),
        where: str = "weight",
        control_draws: int = 3,
        control: bool = True,
        label: str = "",
        seed: int | None = None,
        on_estimate: Callable[[Readout], None] | None = None,
        progress: CallProgress | None = None,
    ) -> Readout:
        """Per-split, per-group readout of an intervention, with a random-neuron control: a
        ``records.Readout`` (exact numbers; ``on_estimate`` gets the progressive estimate first,
        the same record with ``estimate = True``). See ``session_controls.readout``. ``progress``
        gets (chunks walked, chunks in the walk) of the fast path, ≤ ~10×/s."""
        with walk.reporting(self, progress):
            return controls.readout(
                self, neurons, mode, std, seeds, splits, where, control_draws, control, label, seed, on_estimate
            )

    def control(self, count: int, mode: str, std: float, where: str, splits: Sequence[str], draws: int) -> Readout:
        """The random-neuron control for ``count`` neurons (memoised; see ``random_control``)."""
        return controls.random_control(self, count, mode, std, where, splits, draws)

    def accuracies_after(self, split: str, interventions: Sequence[Intervention]) -> list[list[float | None]]:
        """Per-group accuracy after each intervention (batched on the fast path where it applies)."""
        return walk.accuracies_after(self, split, interventions)

    def predictions_after(self, split: str, interventions: Sequence[Intervention]) -> list[torch.Tensor]:
        """Predicted class per example of ``split`` (split order) after each intervention; the
        interventions are walked together on the fast path where it applies (flips, matched
        controls with many draws)."""
        return walk.predictions_after(self, split, interventions)

    def norms_after(self) -> dict[str, str]:
        """Layer → the BatchNorm that directly follows it (found once, on one example)."""
        if self._norms_after is None:
            x, _, _ = next(self.cache("train").batches(2))
            self._norms_after = following_norms(self.model, x, self._layers)
        return self._norms_after

    def close(self) -> None:
        """Drop the cached tensors (the model stays as it is)."""
        for evaluator in self._evaluators.values():
            evaluator.clear()
        self._evaluators.clear()
        for fast in self._fast_evals.values():
            fast.clear()
        self._fast_evals.clear()
        self._caches.clear()

    def baseline_logits(self, split: str) -> torch.Tensor | None:
        """Logits of the unmodified model on ``split`` (split order) on the fast path, the path
        every fast readout compares with (None without it); read from the run directory when
        the run's Stage I left them there."""
        return baselines.baseline_logits(self, split)

    def _baseline(self, split: str) -> list[float | None]:
        return baselines.baseline(self, split)
