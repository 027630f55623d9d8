"""One factory for every backbone: ``create_model(name, num_classes, ...)``.

torchvision ResNets and timm ViT/DeiT get their head replaced by ``Linear(d, num_classes)``.
Pretrained weights come from a local file, or from the torch/timm cache; a hub download is
attempted only with ``allow_download=True`` (offline GPU boxes are the common case).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from labconsole.engine.models.small import MLP, CifarResNet, SmallCNN
from labconsole.errors import CheckpointError, UserError


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    family: str  # "small" | "torchvision" | "timm"
    default_image_size: int
    description: str


Builder = Callable[..., nn.Module]
_REGISTRY: dict[str, tuple[BackboneInfo, Builder]] = {}


def register(name: str, family: str, image_size: int, description: str) -> Callable[[Builder], Builder]:
    def deco(fn: Builder) -> Builder:
        _REGISTRY[name] = (BackboneInfo(name, family, image_size, description), fn)
        return fn

    return deco


def list_backbones() -> list[BackboneInfo]:
    return [info for info, _ in _REGISTRY.values()]


def backbone_info(name: str) -> BackboneInfo:
    if name not in _REGISTRY:
        raise UserError(f"unknown backbone {name!r} (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name][0]


def create_model(
    backbone: str,
    num_classes: int,
    *,
    in_channels: int = 3,
    image_size: int = 32,
    width: int = 16,
    weights: str = "none",
    allow_download: bool = False,
) -> nn.Module:
    info = backbone_info(backbone)
    builder = _REGISTRY[backbone][1]
    model = builder(
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
        width=width,
        weights=weights,
        allow_download=allow_download,
    )
    model.backbone_name = backbone  # type: ignore[attr-defined]
    if info.family == "small" and weights not in ("", "none"):
        _load_local_weights(model, Path(weights), skip_head=False)
    return model


# -- small CPU models ---------------------------------------------------------------------------


def _flat_inputs(in_channels: int, image_size: int) -> int:
    return in_channels * image_size * image_size


@register("cifar_resnet8", "small", 32, "CIFAR-style ResNet-8 with BatchNorm (widths w/2w/4w); embedded default")
def _cifar_resnet8(*, num_classes: int, in_channels: int, width: int, **_: object) -> nn.Module:
    return CifarResNet(1, num_classes, in_channels, width)


@register("cifar_resnet20", "small", 32, "CIFAR ResNet-20 (Paper B)")
def _cifar_resnet20(*, num_classes: int, in_channels: int, width: int, **_: object) -> nn.Module:
    return CifarResNet(3, num_classes, in_channels, width)


@register("small_cnn", "small", 28, "Paper B's 4-conv CNN")
def _small_cnn(*, num_classes: int, in_channels: int, image_size: int, width: int, **_: object) -> nn.Module:
    return SmallCNN(num_classes, in_channels, max(width, 8) * 2, image_size)


@register("mlp", "small", 28, "Paper B's default MLP 784-256-256-256-C")
def _mlp(*, num_classes: int, in_channels: int, image_size: int, **_: object) -> nn.Module:
    return MLP(_flat_inputs(in_channels, image_size), (256, 256, 256), num_classes)


@register("mlp_small", "small", 28, "Paper B's small MLP 784-256-C")
def _mlp_small(*, num_classes: int, in_channels: int, image_size: int, **_: object) -> nn.Module:
    return MLP(_flat_inputs(in_channels, image_size), (256,), num_classes)


@register("mlp_large", "small", 28, "Paper B's large MLP 784-512-512-512-C")
def _mlp_large(*, num_classes: int, in_channels: int, image_size: int, **_: object) -> nn.Module:
    return MLP(_flat_inputs(in_channels, image_size), (512, 512, 512), num_classes)


# -- torchvision ResNets ------------------------------------------------------------------------


def _torchvision_resnet(arch: str) -> Builder:
    def build(*, num_classes: int, in_channels: int, weights: str, allow_download: bool, **_: object) -> nn.Module:
        import torchvision

        if in_channels != 3:
            raise UserError(f"backbone {arch} expects 3 input channels, the dataset has {in_channels}")
        ctor = getattr(torchvision.models, arch)
        enum_cls = torchvision.models.get_model_weights(arch)
        model = ctor(weights=None)
        if weights and weights != "none":
            if weights in enum_cls.__members__ or weights == "DEFAULT":
                enum = enum_cls[weights] if weights != "DEFAULT" else enum_cls.DEFAULT
                state = _cached_or_download(enum.url, allow_download, f"{arch} weights {enum}")
                model.load_state_dict(state)
            else:
                _load_local_weights(model, Path(weights), skip_head=True)
        model.fc = nn.Linear(model.fc.in_features, num_classes)
        return model

    return build


for _arch in ("resnet18", "resnet34", "resnet50"):
    register(_arch, "torchvision", 224, f"torchvision {_arch}; weights: none | IMAGENET1K_V1 | IMAGENET1K_V2 | file")(
        _torchvision_resnet(_arch)
    )


def _cached_or_download(url: str, allow_download: bool, what: str) -> dict[str, torch.Tensor]:
    cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if cache.exists():
        return torch.load(cache, map_location="cpu", weights_only=True)
    if not allow_download:
        raise CheckpointError(
            f"{what} are not in the local cache ({cache}). Put the file there, pass a local path as "
            f"model.weights, or set model.allow_download = true to fetch {url}"
        )
    return torch.hub.load_state_dict_from_url(url, map_location="cpu")


# -- timm ViT / DeiT ----------------------------------------------------------------------------


def _timm_model(arch: str) -> Builder:
    def build(
        *, num_classes: int, in_channels: int, image_size: int, weights: str, allow_download: bool, **_: object
    ) -> nn.Module:
        import timm

        kwargs = dict(num_classes=num_classes, in_chans=in_channels, img_size=image_size)
        if weights in ("pretrained", "hub") or weights.startswith("timm:"):
            if not allow_download:
                raise CheckpointError(
                    f"{arch}: pretrained weights from the hub need model.allow_download = true; "
                    "on an offline machine pass a local file as model.weights "
                    "(e.g. deit_small_patch16_224-cd65a155.pth)"
                )
            return timm.create_model(arch, pretrained=True, **kwargs)
        model = timm.create_model(arch, pretrained=False, **kwargs)
        if weights and weights != "none":
            _load_local_weights(model, Path(weights), skip_head=True)
        return model

    return build


for _arch, _desc in (
    ("deit_tiny_patch16_224", "DeiT-Ti/16 (timm)"),
    ("deit_small_patch16_224", "DeiT-S/16 (timm)"),
    ("deit_base_patch16_224", "DeiT-B/16 (timm)"),
    ("vit_small_patch16_224", "ViT-S/16 (timm)"),
):
    register(_arch, "timm", 224, f"{_desc}; weights: none | pretrained (hub) | file")(_timm_model(_arch))


# -- heads and features -------------------------------------------------------------------------


def get_head(model: nn.Module) -> nn.Linear:
    """The final Linear classifier (``fc`` for ResNets/small models, ``head`` for timm ViTs)."""
    for attr in ("fc", "head"):
        head = getattr(model, attr, None)
        if isinstance(head, nn.Linear):
            return head
    raise TypeError(f"{type(model).__name__} has no Linear head named fc or head")


def forward_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Penultimate features (the input of the head)."""
    if hasattr(model, "features") and callable(model.features) and not isinstance(model.features, nn.Module):
        return model.features(x)
    if hasattr(model, "forward_head"):  # timm
        return model.forward_head(model.forward_features(x), pre_logits=True)
    if hasattr(model, "layer4"):  # torchvision ResNet
        m = model
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
        return torch.flatten(m.avgpool(x), 1)
    raise TypeError(f"don't know how to take features from {type(model).__name__}")


def _load_local_weights(model: nn.Module, path: Path, *, skip_head: bool) -> None:
    from labconsole.engine.models.checkpoint import fit_state_dict, load_state_dict_file

    if not path.exists():
        raise CheckpointError(f"weights file not found: {path}")
    state = load_state_dict_file(path)
    fit_state_dict(model, state, source=str(path), skip_head=skip_head)
