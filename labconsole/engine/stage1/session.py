"""``Session``: a model, its cached splits and baseline readouts kept warm between calls.

The console (Neurons and Interventions screens), the ``rank`` / ``intervene`` commands and the
Stage I pipeline stages all go through this object::

    session = Session.from_checkpoint("runs/…-quickstart-s0", device="cpu")
    session.layers()                      # [("conv1", "conv", 16), ("layer1.0.conv1", "conv", 16), …]
    top = session.rank("gradient", group="waterbird-land", k=3)   # [(layer, index, score), …]
    result = session.readout([(l, i) for l, i, _ in top], mode="zero")
    result["splits"]["train"]["delta_pp"]["waterbird-land"]      # change in pp vs the baseline

Every readout leaves the model's weights bit-for-bit as they were (see ``interventions``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labconsole.config.neurons import NeuronsConfig
from labconsole.engine.data.cache import TensorCache
from labconsole.engine.data.groups import DatasetBundle
from labconsole.engine.events import CancelToken, NeverCancelled
from labconsole.engine.stage1 import ranking as rk
from labconsole.engine.stage1.interventions import Intervention, apply_intervention, check_mode, touched_modules
from labconsole.engine.stage1.neurons import Layer, NeuronRef, check_neurons, eligible_layers, following_norms
from labconsole.engine.stage1.readout import SplitEvaluator, group_accuracy, summarise
from labconsole.errors import CheckpointError, UserError


class Session:
    """Interactive Stage I on one model and one dataset.

    ``Session(model, bundle, device)`` or ``Session.from_checkpoint(path_or_run_dir, device)``.
    Attributes: ``group_names`` (tuple), ``train_group_counts`` ({group: n}), ``config``
    (NeuronsConfig: eligible layers, sample sizes, batch size, cut-cache budget).
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
        self._controls: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._norms_after: dict[str, str] | None = None

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
    ) -> Session:
        """Load a checkpoint (file or run directory). The dataset comes from the run's
        ``config.toml`` (so the embedded data is rebuilt exactly), else from the sidecar's
        ``dataset`` and ``image_size`` plus ``data_root``."""
        from labconsole.engine.data.registry import load_dataset
        from labconsole.engine.models.checkpoint import load_checkpoint, read_sidecar, resolve_checkpoint

        path = resolve_checkpoint(path_or_run_dir)
        meta = read_sidecar(path)
        data_cfg, preset_neurons, seed = _data_config_for(path, meta, data_root)
        bundle = load_dataset(data_cfg)
        if meta.get("group_names") and tuple(meta["group_names"]) != tuple(bundle.groups.group_names):
            raise CheckpointError(
                f"{path} was trained on groups {meta['group_names']}, the dataset has {list(bundle.groups.group_names)}"
            )
        model, _ = load_checkpoint(path, device)
        return cls(model, bundle, device, config=config or preset_neurons, cancel=cancel, seed=seed)

    @classmethod
    def open(
        cls,
        *,
        dataset: str = "synthetic-waterbirds",
        data_root: str = "",
        backbone: str = "cifar_resnet8",
        checkpoint: str = "",
        device: str = "auto",
    ) -> Session:
        """What the console's Setup screen asks for: a checkpoint, or fresh weights on a dataset."""
        from labconsole.config.data import DataConfig
        from labconsole.engine.data.registry import load_dataset
        from labconsole.engine.models.factory import backbone_info, create_model

        resolved = _resolve_device(device)
        if checkpoint:
            return cls.from_checkpoint(checkpoint, resolved, data_root=data_root or None)
        info = backbone_info(backbone)
        size = 32 if info.family == "small" and dataset == "synthetic-waterbirds" else info.default_image_size
        bundle = load_dataset(DataConfig(dataset=dataset, root=data_root, image_size=size))  # type: ignore[arg-type]
        model = create_model(
            backbone, bundle.groups.num_classes, in_channels=bundle.channels, image_size=bundle.image_size
        )
        return cls(model, bundle, resolved)

    # -- what there is ---------------------------------------------------------------------------
    def layers(self) -> list[tuple[str, str, int]]:
        """Eligible layers as ``(name, kind, n_neurons)``; kind is "conv" or "linear"."""
        return [layer.as_tuple() for layer in self._layers]

    def cache(self, split: str) -> TensorCache:
        if split not in self._caches:
            self._caches[split] = TensorCache.from_split(self.bundle.split(split), self.bundle, self.device)
        return self._caches[split]

    def evaluator(self, split: str) -> SplitEvaluator:
        if split not in self._evaluators:
            budget = int(self.config.cut_cache_mb) * (1 << 20) or _auto_budget(self.device)
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
            if criterion == "magnitude":
                self._scores[key] = rk.magnitude_scores(self._layers, norm)
            else:
                index = self.samples_for(name)
                train = self.cache("train")
                if criterion == "gradient":
                    self._scores[key] = rk.gradient_scores(
                        self.model, self._layers, train, index, norm, self.config.grad_batch_size
                    )
                else:
                    self._scores[key] = rk.activation_scores(
                        self.model, self._layers, train, index, self.config.batch_size
                    )
        return self._scores[key]

    def samples_for(self, group: str | None) -> torch.Tensor:
        """Training indices S_g the gradient/activation scores of ``group`` use (None = all)."""
        if group not in self._samples:
            index = None if group is None else self.group_names.index(group)
            self._samples[group] = rk.select_gradient_samples(
                self.model,
                self.cache("train"),
                index,
                worst=self.config.worst_samples,
                sampled=self.config.sampled,
                seed=self.config.sample_seed,
                batch_size=self.config.batch_size,
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
    ) -> rk.Ranking:
        """A ``Ranking`` (neurons + the training samples used). ``layers`` restricts the ranking
        to some eligible layers (structured tracing ranks one layer at a time)."""
        scope = rk.normalise_scope(scope)
        scores = self.scores(criterion, group, norm)
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
        return rk.Ranking(criterion, group_name, scope, float(k), norm, per_layer_normalise, tuple(neurons), used)

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
    ) -> dict[str, Any]:
        """Per-split, per-group readout of an intervention, with a random-neuron control.

        Returns ``{"label", "mode", "std", "seeds", "where", "neurons": [[layer, index], …],
        "splits": {split: {"baseline": {g: acc}, "after": {g: acc}, "delta_pp": {g: pp},
        "spread_pp": {g: pp}}}, "control": <same shape> | None, "control_neurons": [[[layer,
        index], …] per draw], "wga_quantum_pp": {split: pp}, "seconds": s}``. Accuracies are
        fractions; ``delta_pp`` = (after − baseline)·100; ``after`` is the mean over ``seeds``
        seeds for reinit/noise (1 evaluation for zero) and ``spread_pp`` their std. The control
        applies the same intervention to as many random eligible neurons, ``control_draws``
        draws (draw d uses seed d); its ``after``/``spread_pp`` are over draws. Draws depend only
        on the number of neurons, so they are computed once per (k, mode, σ, where) and reused.
        """
        started = time.monotonic()
        neurons = [(str(layer), int(index)) for layer, index in neurons]
        check_neurons(self._layers, neurons)
        check_mode(mode, std)
        if int(seeds) < 1:
            raise UserError(f"seeds = {seeds}: expected at least 1")
        for split in splits:
            self.bundle.split(split)
        base_seed = self.seed if seed is None else int(seed)
        repeats = 1 if mode == "zero" else int(seeds)
        out_splits = {}
        for split in splits:
            afters = [
                self.accuracy_after(split, Intervention(tuple(neurons), mode, std, base_seed + s, where))
                for s in range(repeats)
            ]
            out_splits[split] = summarise(self.group_names, self._baseline(split), afters)
        result: dict[str, Any] = {
            "label": label,
            "mode": mode,
            "std": None if mode == "zero" else float(std),
            "seeds": repeats,
            "where": where,
            "neurons": [list(n) for n in neurons],
            "splits": out_splits,
            "control": None,
            "control_neurons": [],
            "wga_quantum_pp": {s: self.wga_quantum_pp(s) for s in splits},
        }
        if control and control_draws > 0:
            ctrl = self.control(len(neurons), mode, std, where, splits, control_draws)
            result["control"], result["control_neurons"] = ctrl["splits"], ctrl["neurons"]
        result["seconds"] = time.monotonic() - started
        return result

    def control(
        self, count: int, mode: str, std: float, where: str, splits: Sequence[str], draws: int
    ) -> dict[str, Any]:
        """The random-neuron control for ``count`` neurons (memoised)."""
        key = (count, mode, None if mode == "zero" else float(std), where, tuple(splits), int(draws))
        if key not in self._controls:
            picks = [self.random_neurons(count, seed=self.seed * 7919 + 1000 * count + d) for d in range(draws)]
            out = {}
            for split in splits:
                afters = [
                    self.accuracy_after(split, Intervention(tuple(p), mode, std, d, where)) for d, p in enumerate(picks)
                ]
                out[split] = summarise(self.group_names, self._baseline(split), afters)
            self._controls[key] = {"splits": out, "neurons": [[list(n) for n in p] for p in picks]}
        return self._controls[key]

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
        self._caches.clear()

    def _baseline(self, split: str) -> list[float | None]:
        if split not in self._baselines:
            cache = self.cache(split)
            pred = self.evaluator(split).predictions(None, self.cancel)
            self._baselines[split] = group_accuracy(pred, cache.y, cache.g, self.bundle.groups.num_groups)
        return self._baselines[split]


def _auto_budget(device: torch.device) -> int:
    """Memory for cached activations per split: 1 GiB on a CPU, a quarter of free GPU memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free) // 4
    return 1 << 30


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device cuda: no CUDA device is available here (use cpu or auto)")
    return torch.device(device)


def _data_config_for(path: Path, meta: dict[str, Any], data_root: str | None) -> tuple[Any, NeuronsConfig | None, int]:
    """The dataset a checkpoint was made on: its run's config.toml, else its sidecar."""
    from labconsole.config.data import DataConfig

    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    config_file = run_dir / "config.toml"
    if config_file.exists():
        from labconsole.presets import load_preset

        preset = load_preset(config_file)
        data = preset.data if not data_root else preset.data.model_copy(update={"root": data_root})
        if meta.get("dataset") and meta["dataset"] != data.dataset and not data.is_embedded:
            data = DataConfig(dataset=meta["dataset"], root=data_root or data.root, image_size=data.image_size)
        return data, preset.neurons, preset.seed
    if not meta.get("dataset"):
        raise CheckpointError(
            f"{path}: no run config.toml next to it and no `dataset` in its JSON sidecar, "
            "so the dataset it was trained on is unknown"
        )
    try:
        data = DataConfig(dataset=meta["dataset"], root=data_root or "", image_size=int(meta.get("image_size", 32)))
    except Exception as exc:
        raise CheckpointError(f"{path}: sidecar dataset {meta['dataset']!r} is not usable ({exc})") from None
    return data, None, 0
