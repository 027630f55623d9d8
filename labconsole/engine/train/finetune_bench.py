"""Cost of one Stage II step against one ERM step on the same batch and model.

ERM step: augment the batch (random translation), forward, CE, backward, Adam step.
Fine-tuning step: two augmented views (Table 1 warp, or the same translation + flip),
target forward, auxiliary forward (masked weights, shared parameters), NT-Xent + λ·MSE,
backward through both branches, Adam step. Reported with and without the augmentation, plus
the once-per-epoch cost of building the mask (magnitude and gradient criteria).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_time(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_finetune_step(
    *,
    backbone: str = "cifar_resnet8",
    image_size: int = 32,
    width: int = 16,
    batch_size: int = 128,
    device: str = "auto",
    repeats: int = 10,
    views: str = "translate",
) -> dict[str, Any]:
    from labconsole.config.finetune import FinetuneConfig
    from labconsole.engine.api import resolve_device
    from labconsole.engine.data.cache import TensorCache
    from labconsole.engine.models.factory import create_model
    from labconsole.engine.pipeline import autocast_for
    from labconsole.engine.stage1.neurons import eligible_layers
    from labconsole.engine.train.batches import translate_batch
    from labconsole.engine.train.critical_mask import build_epoch_mask
    from labconsole.engine.train.finetune_step import FinetuneStep
    from labconsole.engine.train.views import two_views

    dev = resolve_device(device)
    torch.manual_seed(0)
    model = create_model(backbone, 2, image_size=image_size, width=width).to(dev).train()
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(batch_size, 3, image_size, image_size, generator=generator) * 255).to(torch.uint8).to(dev)
    y = torch.randint(0, 2, (batch_size,), generator=generator).to(dev)
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1) * 255

    def normalise(x: torch.Tensor) -> torch.Tensor:
        x = (x.float() - mean) / std
        return x.contiguous(memory_format=torch.channels_last) if dev.type == "cuda" else x

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-6)  # tiny lr: the model barely moves while timed
    pad = max(1, image_size // 16)

    def erm_compute(x: torch.Tensor) -> None:
        with autocast_for(dev):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch stubs leave backward untyped
        optimizer.step()

    cfg = FinetuneConfig(views=views)
    layers = eligible_layers(model)
    step = FinetuneStep(model, cfg, dev)
    mask, _ = build_epoch_mask(model, layers, cfg)
    step.set_mask(mask)
    from labconsole.engine.train.views import VIEW_MAKERS

    make_view = VIEW_MAKERS[views]
    fixed_x = normalise(images)
    fixed_x2 = normalise(make_view(images, generator))

    out: dict[str, Any] = {
        "device": str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
        "backbone": backbone,
        "image_size": image_size,
        "batch_size": batch_size,
        "threads": torch.get_num_threads(),
        "views": views,
        "masked": mask.description,
    }
    out["erm_step_s"] = _median_time(
        lambda: erm_compute(normalise(translate_batch(images, pad, generator))), dev, repeats
    )

    def finetune_full() -> None:
        view1, view2 = two_views(images, generator, views)
        step.step(optimizer, normalise(view1), normalise(view2), y)

    out["finetune_step_s"] = _median_time(finetune_full, dev, repeats)
    out["erm_compute_s"] = _median_time(lambda: erm_compute(fixed_x), dev, repeats)
    out["finetune_compute_s"] = _median_time(lambda: step.step(optimizer, fixed_x, fixed_x2, y), dev, repeats)
    out["ratio"] = out["finetune_step_s"] / out["erm_step_s"]
    out["ratio_compute_only"] = out["finetune_compute_s"] / out["erm_compute_s"]

    # Once per epoch: the mask. The gradient criterion scores the training set for the worst CE.
    out["mask_magnitude_s"] = _median_time(lambda: build_epoch_mask(model, layers, cfg), dev, 3, warmup=1)
    from labconsole.engine.data.groups import DatasetBundle, GroupInfo, SplitData

    n = 8 * batch_size
    pool = (torch.rand(n, 3, image_size, image_size, generator=generator) * 255).to(torch.uint8)
    labels = torch.randint(0, 2, (n,), generator=generator)
    split = SplitData("train", y=labels, a=labels.clone(), g=labels * 2 + labels, images=pool)
    bundle = DatasetBundle("bench", GroupInfo(("a", "b"), ("x", "y")), {"train": split}, image_size)
    cache = TensorCache.from_split(split, bundle, dev)
    grad_cfg = FinetuneConfig(criterion="gradient")
    out["mask_gradient_s"] = _median_time(
        lambda: build_epoch_mask(model, layers, grad_cfg, cache=cache, bundle=bundle), dev, 3, warmup=1
    )
    out["mask_gradient_pool"] = n
    return out


def format_result(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"device {r['device']}, {r['backbone']} at {r['image_size']} px, batch {r['batch_size']}, "
            f"{r['threads']} threads; auxiliary masks {r['masked']}",
            f"ERM step (translate + fwd/bwd/Adam)        {r['erm_step_s'] * 1e3:9.2f} ms",
            f"fine-tuning step ({r['views']} views, 2 branches) {r['finetune_step_s'] * 1e3:9.2f} ms",
            f"ratio fine-tuning / ERM                   {r['ratio']:9.2f}×  (target ≤ 2.0×)",
            f"  compute only (views precomputed)        {r['ratio_compute_only']:9.2f}×",
            f"mask per epoch: magnitude {r['mask_magnitude_s'] * 1e3:.1f} ms, gradient "
            f"{r['mask_gradient_s'] * 1e3:.1f} ms (worst-CE search over {r['mask_gradient_pool']} images)",
        ]
    )
