"""``labconsole bench …``: benchmarks that print ratios against a plain implementation measured
in the same run. Other areas add their subcommands to ``bench_app``.

``bench readout``: one zero-out readout over the whole train split through the fast path
(tensor cache + recomputation from the first modified layer) against a plain path (a
``DataLoader`` reading the split's images from PNG files through an eval transform, full forward
each time), on the same model and data; plus the time of a full per-group gradient ranking.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import typer

from labconsole.cli.bench_session import bench_session
from labconsole.config.vocab import Device, Views

bench_app = typer.Typer(help="benchmarks (print times and ratios against a plain implementation)", no_args_is_help=True)
bench_app.command("session")(bench_session)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")


@bench_app.command("readout")
def bench_readout(
    backbone: str = typer.Option("cifar_resnet8", "--backbone", help="model (random weights unless --checkpoint)"),
    image_size: int = typer.Option(32, "--image-size", help="synthetic-waterbirds image side"),
    device: Device = typer.Option("auto", "--device", help="where to compute"),
    checkpoint: str | None = typer.Option(None, "--checkpoint", help="run dir or checkpoint (uses its data)"),
    width: int = typer.Option(16, "--width", help="width of the small CPU models"),
    batch_size: int = typer.Option(512, "--batch-size"),
    repeats: int = typer.Option(3, "--repeats", help="timed fast readouts per neuron (median shown)"),
    workers: int = typer.Option(-1, "--workers", help="DataLoader workers of the plain path (-1 = auto)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Time a zero-out readout: fast path vs plain DataLoader path, and a gradient ranking."""
    from labconsole.errors import UserError

    try:
        result = measure_readout(
            backbone=backbone,
            image_size=image_size,
            device=device,
            checkpoint=checkpoint,
            width=width,
            batch_size=batch_size,
            repeats=repeats,
            workers=workers,
        )
    except UserError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(result, indent=2) if as_json else format_result(result))


def measure_readout(
    *,
    backbone: str = "cifar_resnet8",
    image_size: int = 32,
    device: str = "auto",
    checkpoint: str | None = None,
    width: int = 16,
    batch_size: int = 512,
    repeats: int = 3,
    workers: int = -1,
) -> dict[str, Any]:
    import os

    import torch

    from labconsole.config.data import DataConfig
    from labconsole.config.neurons import NeuronsConfig
    from labconsole.engine.data.registry import load_dataset
    from labconsole.engine.device import resolve_device
    from labconsole.engine.models.factory import create_model
    from labconsole.engine.stage1.interventions import Intervention
    from labconsole.engine.stage1.session import Session

    dev = resolve_device(device)
    cfg = NeuronsConfig(batch_size=batch_size)
    t0 = time.perf_counter()
    if checkpoint:
        session = Session.from_checkpoint(checkpoint, dev, config=cfg)
    else:
        bundle = load_dataset(DataConfig(dataset="synthetic-waterbirds", image_size=image_size))
        torch.manual_seed(0)
        model = create_model(backbone, bundle.groups.num_classes, image_size=image_size, width=width)
        session = Session(model, bundle, dev, config=cfg)
    data_s = time.perf_counter() - t0
    out: dict[str, Any] = {
        "device": str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
        "backbone": backbone if not checkpoint else str(checkpoint),
        "image_size": session.bundle.image_size,
        "train_images": len(session.bundle.split("train")),
        "threads": torch.get_num_threads(),
        "data_and_model_s": data_s,
    }
    t0 = time.perf_counter()
    session.cache("train")
    out["tensor_cache_s"] = time.perf_counter() - t0
    out["baseline_full_pass_s"] = _timed(lambda: session.baseline("train"), dev)

    # Full per-group gradient ranking: worst-sample selection + gradients, every group.
    def rank_all() -> None:
        session._scores.clear()
        session._samples.clear()
        for group in session.group_names:
            session.rank("gradient", group=group, k=1)

    out["gradient_ranking_all_groups_s"] = _timed(rank_all, dev)

    counts = session.train_group_counts
    minority = min(counts, key=lambda name: counts[name])
    top = session.rank("gradient", group=minority, k=1)[0]
    layers = session.layers()
    probes = {
        f"top-1 gradient neuron of {minority} ({top[0]}:{top[1]})": (top[0], top[1]),
        f"first layer ({layers[0][0]}:0, worst case)": (layers[0][0], 0),
        f"last eligible layer ({layers[-1][0]}:0)": (layers[-1][0], 0),
    }
    fast: dict[str, Any] = {}
    for label, neuron in probes.items():
        iv = Intervention((neuron,), "zero")
        first = _timed(lambda iv=iv: session.accuracy_after("train", iv), dev)
        times = [_timed(lambda iv=iv: session.accuracy_after("train", iv), dev) for _ in range(max(1, repeats))]
        fast[label] = {
            "first_s": first,
            "median_s": statistics.median(times),
            "path": session.evaluator("train").last_path,
        }
    out["fast"] = fast

    n_workers = workers if workers >= 0 else (0 if dev.type == "cpu" else min(8, (os.cpu_count() or 2) - 1))
    iv = Intervention(((top[0], top[1]),), "zero")
    with tempfile.TemporaryDirectory(prefix="labconsole-bench-") as tmp:
        t0 = time.perf_counter()
        paths = _write_pngs(session.bundle.split("train").images, Path(tmp))
        out["png_write_s"] = time.perf_counter() - t0
        plain_s, plain_acc = _plain_readout(session, paths, iv, batch_size, n_workers, dev)
    fast_acc = session.accuracy_after("train", iv)
    out["plain"] = {
        "seconds": plain_s,
        "workers": n_workers,
        "same_accuracy_as_fast": all(
            abs(a - b) < 1e-9 for a, b in zip(plain_acc, fast_acc) if a is not None and b is not None
        ),
    }
    headline = fast[next(iter(fast))]["median_s"]
    out["ratio_plain_over_fast"] = plain_s / headline if headline else None
    out["ratio_plain_over_fast_worst_case"] = plain_s / fast[list(fast)[1]]["median_s"]
    return out


def _timed(fn: Any, dev: Any) -> float:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    fn()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - t0


def _write_pngs(images: Any, folder: Path) -> list[Path]:
    from PIL import Image

    paths = []
    for i, img in enumerate(images):
        path = folder / f"{i:06d}.png"
        array = img.permute(1, 2, 0).numpy()
        Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(path)
        paths.append(path)
    return paths


class _PngSplit:
    """A plain map-style dataset: open a PNG, eval transform, normalise (module level: picklable)."""

    def __init__(self, paths: list[Path], size: int, mean: tuple[float, ...], std: tuple[float, ...]):
        from torchvision import transforms as T

        self.paths = paths
        # PNGs are stored at model resolution, so Resize/CenterCrop keep every pixel and both paths
        # see identical inputs (real JPEGs would make the plain path slower still).
        self.transform = T.Compose([T.Resize((size, size)), T.CenterCrop(size), T.ToTensor(), T.Normalize(mean, std)])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Any:
        from PIL import Image

        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB"))


def _plain_readout(
    session: Any, paths: list[Path], iv: Any, batch_size: int, workers: int, dev: Any
) -> tuple[float, list[float | None]]:
    import torch
    from torch.utils.data import DataLoader, Dataset

    from labconsole.engine.stage1.interventions import apply_intervention
    from labconsole.engine.stage1.readout import group_accuracy

    bundle = session.bundle
    # A map-style dataset (``__len__`` + ``__getitem__``) without importing torch at module level.
    dataset = cast("Dataset[Any]", _PngSplit(paths, bundle.image_size, bundle.mean, bundle.std))
    loader: DataLoader[Any] = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        shuffle=False,
    )
    split = bundle.split("train")
    model = session.model
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
    )
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    preds = []
    with apply_intervention(model, session._by_name, iv), torch.no_grad(), autocast:
        for x in loader:
            preds.append(model(x.to(dev, non_blocking=True)).argmax(dim=1))
    pred = torch.cat(preds)
    acc = group_accuracy(pred, split.y.to(dev), split.g.to(dev), bundle.groups.num_groups)
    return time.perf_counter() - t0, acc


def format_result(r: dict[str, Any]) -> str:
    lines = [
        f"device {r['device']}, {r['backbone']} at {r['image_size']} px, {r['train_images']} train images, "
        f"{r['threads']} threads",
        f"tensor cache build        {r['tensor_cache_s']:8.3f} s (once)",
        f"baseline full pass        {r['baseline_full_pass_s']:8.3f} s (once)",
        f"gradient ranking, all groups {r['gradient_ranking_all_groups_s']:5.3f} s",
    ]
    for label, v in r["fast"].items():
        lines.append(
            f"fast zero-out readout     {v['median_s']:8.3f} s median (first {v['first_s']:.3f} s, "
            f"{v['path']} path)  {label}"
        )
    lines.append(
        f"plain DataLoader readout  {r['plain']['seconds']:8.3f} s ({r['plain']['workers']} workers, "
        f"same accuracies: {r['plain']['same_accuracy_as_fast']})"
    )
    lines.append(
        f"ratio plain / fast        {r['ratio_plain_over_fast']:8.1f}×  (worst case, first layer: "
        f"{r['ratio_plain_over_fast_worst_case']:.1f}×)"
    )
    return "\n".join(lines)


@bench_app.command("finetune")
def bench_finetune(
    backbone: str = typer.Option("cifar_resnet8", "--backbone", help="model (random weights)"),
    image_size: int = typer.Option(32, "--image-size"),
    width: int = typer.Option(16, "--width", help="width of the small CPU models"),
    batch_size: int = typer.Option(128, "--batch-size"),
    device: Device = typer.Option("auto", "--device", help="where to compute"),
    repeats: int = typer.Option(10, "--repeats", help="timed steps (median shown)"),
    views: Views = typer.Option("translate", "--views", help="augmentation of the two views"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Time one fine-tuning step (two views, target + auxiliary branch) against one ERM step."""
    from labconsole.engine.train.finetune_bench import format_result as format_finetune
    from labconsole.engine.train.finetune_bench import measure_finetune_step

    result = measure_finetune_step(
        backbone=backbone,
        image_size=image_size,
        width=width,
        batch_size=batch_size,
        device=device,
        repeats=repeats,
        views=views,
    )
    typer.echo(json.dumps(result, indent=2) if as_json else format_finetune(result))
