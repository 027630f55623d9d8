"""One factory for every backbone: ``create_model(name, num_classes, ...)``.

torchvision ResNets and timm ViT/DeiT get their head replaced by ``Linear(d, num_classes)``.
Any other timm model is named ``timm:<architecture>[.<pretrained tag>]``, e.g.
``timm:vit_small_patch16_224.augreg_in21k_ft_in1k``; the tag goes to timm as given, so the
weights (and the pretrained config) are exactly the ones named. For the registered timm
backbones, ``weights = "timm:<tag>"`` picks a tag the same way.
Pretrained weights come from a local file, or from the torch/timm cache; a hub download is
attempted only with ``allow_download=True`` (offline GPU boxes are the common case).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from labconsole.engine.models.small import MLP, CifarResNet, SmallCNN
from labconsole.engine.models.weights import load_local_weights
from labconsole.errors import CheckpointError, UserError

if TYPE_CHECKING:
    from timm.models import PretrainedCfg

TIMM_PREFIX = "timm:"


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
    if name.startswith(TIMM_PREFIX):
        arch, tag = split_timm_name(name)
        return BackboneInfo(name, "timm", _timm_image_size(arch, tag), f"timm {arch}" + (f" ({tag})" if tag else ""))
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise UserError(f"unknown backbone {name!r} (known: {known}; or any timm model as timm:<name>[.<tag>])")
    return _REGISTRY[name][0]


def _builder(name: str) -> Builder:
    if name.startswith(TIMM_PREFIX):
        return _timm_model(name)
    backbone_info(name)  # the error names the known backbones
    return _REGISTRY[name][1]


def create_model(
    backbone: str,
    num_classes: int,
    *,
    in_channels: int = 3,
    image_size: int = 32,
    width: int = 16,
    weights: str = "none",
    allow_download: bool = False,
    allow_pickle: bool = False,
) -> nn.Module:
    """``allow_pickle``: a legacy ``.pth`` in ``weights`` may be fully unpickled (trusted files only)."""
    info = backbone_info(backbone)
    model = _builder(backbone)(
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
        width=width,
        weights=weights,
        allow_download=allow_download,
        allow_pickle=allow_pickle,
    )
    # The checkpoint sidecar and error messages name the backbone as the preset spelt it.
    model.backbone_name = backbone  # type: ignore[assignment]
    if info.family == "small" and weights not in ("", "none"):
        load_local_weights(model, Path(weights), skip_head=False, allow_pickle=allow_pickle)
    return model


# -- small CPU models ---------------------------------------------------------------------------


def _flat_inputs(in_channels: int, image_size: int) -> int:
    return in_channels * image_size * image_size


@register("cifar_resnet8", "small", 32, "CIFAR-style ResNet-8 with BatchNorm (widths w/2w/4w); embedded default")
def _cifar_resnet8(*, num_classes: int, in_channels: int, width: int, **_: object) -> nn.Module:
    return CifarResNet(1, num_classes, in_channels, width)


@register("cifar_resnet20", "small", 32, "CIFAR ResNet-20 with zero-padding shortcuts (Paper B)")
def _cifar_resnet20(*, num_classes: int, in_channels: int, width: int, **_: object) -> nn.Module:
    return CifarResNet(3, num_classes, in_channels, width, shortcut="pad")


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
    def build(
        *, num_classes: int, in_channels: int, weights: str, allow_download: bool, allow_pickle: bool, **_: object
    ) -> nn.Module:
        import torchvision

        if in_channels != 3:
            raise UserError(f"backbone {arch} expects 3 input channels, the dataset has {in_channels}")
        ctor = getattr(torchvision.models, arch)
        enum_cls = torchvision.models.get_model_weights(arch)
        model = cast(nn.Module, ctor(weights=None))
        if weights and weights != "none":
            if weights in enum_cls.__members__ or weights == "DEFAULT":
                enum = enum_cls[weights] if weights != "DEFAULT" else enum_cls.DEFAULT
                state = _cached_or_download(enum.url, allow_download, f"{arch} weights {enum}")
                model.load_state_dict(state)
            else:
                load_local_weights(model, Path(weights), skip_head=True, allow_pickle=allow_pickle)
        model.fc = nn.Linear(get_head(model).in_features, num_classes)
        return model

    return build


for _arch in ("resnet18", "resnet34", "resnet50"):
    register(_arch, "torchvision", 224, f"torchvision {_arch}; weights: none | IMAGENET1K_V1 | IMAGENET1K_V2 | file")(
        _torchvision_resnet(_arch)
    )


def _cached_or_download(url: str, allow_download: bool, what: str) -> dict[str, torch.Tensor]:
    cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if cache.exists():
        state: dict[str, torch.Tensor] = torch.load(cache, map_location="cpu", weights_only=True)
        return state
    if not allow_download:
        raise CheckpointError(
            f"{what} are not in the local cache ({cache}). Put the file there, pass a local path as "
            f"model.weights, or set model.allow_download = true to fetch {url}"
        )
    downloaded: dict[str, torch.Tensor] = torch.hub.load_state_dict_from_url(url, map_location="cpu")
    return downloaded


# -- timm ViT / DeiT ----------------------------------------------------------------------------


def split_timm_name(name: str) -> tuple[str, str]:
    """``timm:vit_small_patch16_224.augreg_in21k_ft_in1k`` → (architecture, tag); the tag may be ""."""
    import timm
    from timm.models import split_model_name_tag

    arch, tag = split_model_name_tag(name.removeprefix(TIMM_PREFIX))
    if not timm.is_model(arch):
        raise UserError(f"backbone {name!r}: timm has no architecture {arch!r} (see timm.list_models())")
    if tag:
        _timm_pretrained_cfg(arch, tag, name)
    return arch, tag


def _timm_pretrained_cfg(arch: str, tag: str, spelt: str) -> PretrainedCfg | None:
    from timm.models import get_pretrained_cfg

    try:
        return get_pretrained_cfg(f"{arch}.{tag}" if tag else arch)
    except RuntimeError:
        import timm

        tags = sorted(n.split(".", 1)[1] for n in timm.list_pretrained(f"{arch}.*"))
        raise UserError(
            f"{spelt!r}: timm has no pretrained tag {tag!r} for {arch} (tags: {', '.join(tags) or 'none'})"
        ) from None


def _timm_image_size(arch: str, tag: str) -> int:
    cfg = _timm_pretrained_cfg(arch, tag, f"{TIMM_PREFIX}{arch}")
    return int(cfg.input_size[-1]) if cfg is not None and cfg.input_size else 224


def timm_request(backbone: str, weights: str) -> tuple[str, bool]:
    """The model name handed to ``timm.create_model`` and whether it asks for pretrained weights.

    ``backbone`` is a registered name (``deit_small_patch16_224``) or ``timm:<arch>[.<tag>]``;
    ``weights`` is "none", "pretrained"/"hub" (the tag in the backbone, else timm's default),
    ``timm:<tag>`` (that tag), or a local file (built without pretrained weights, then loaded)."""
    arch, tag = split_timm_name(backbone) if backbone.startswith(TIMM_PREFIX) else (backbone, "")
    pretrained = weights in ("pretrained", "hub") or weights.startswith(TIMM_PREFIX)
    if weights.startswith(TIMM_PREFIX):
        asked = weights.removeprefix(TIMM_PREFIX)
        if tag and asked and asked != tag:
            raise UserError(f"model.backbone names timm tag {tag!r} but model.weights asks for {asked!r}: give one")
        tag = asked or tag
        if tag:
            _timm_pretrained_cfg(arch, tag, f"{backbone} with weights {weights}")
    return (f"{arch}.{tag}" if tag else arch), pretrained


def _timm_model(backbone: str) -> Builder:
    def build(
        *,
        num_classes: int,
        in_channels: int,
        image_size: int,
        weights: str,
        allow_download: bool,
        allow_pickle: bool,
        **_: object,
    ) -> nn.Module:
        name, pretrained = timm_request(backbone, weights)
        if pretrained and not allow_download:
            raise CheckpointError(
                f"{backbone}: pretrained weights ({name}) from the hub need model.allow_download = true; "
                "on an offline machine pass a local file as model.weights "
                "(e.g. deit_small_patch16_224-cd65a155.pth)"
            )
        model = _timm_create(name, pretrained, num_classes=num_classes, in_chans=in_channels, img_size=image_size)
        if not pretrained and weights and weights != "none":
            load_local_weights(model, Path(weights), skip_head=True, allow_pickle=allow_pickle)
        return model

    return build


def _timm_create(name: str, pretrained: bool, *, num_classes: int, in_chans: int, img_size: int) -> nn.Module:
    import timm

    try:
        model = timm.create_model(
            name, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans, img_size=img_size
        )
    except TypeError as exc:
        if "img_size" not in str(exc):
            raise
        # Convolutional timm models take any input size and have no img_size argument.
        model = timm.create_model(name, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans)
    return model


for _arch, _desc in (
    ("deit_tiny_patch16_224", "DeiT-Ti/16 (timm)"),
    ("deit_small_patch16_224", "DeiT-S/16 (timm)"),
    ("deit_base_patch16_224", "DeiT-B/16 (timm)"),
    ("vit_small_patch16_224", "ViT-S/16 (timm)"),
):
    register(_arch, "timm", 224, f"{_desc}; weights: none | pretrained (hub) | timm:<tag> | file")(_timm_model(_arch))


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
    features = getattr(model, "features", None)
    if callable(features) and not isinstance(features, nn.Module):  # the small models
        return cast(torch.Tensor, features(x))
    forward_head = getattr(model, "forward_head", None)
    forward_body = getattr(model, "forward_features", None)
    if callable(forward_head) and callable(forward_body):  # timm
        return cast(torch.Tensor, forward_head(forward_body(x), pre_logits=True))
    from torchvision.models import ResNet

    if isinstance(model, ResNet):
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
        return torch.flatten(model.avgpool(x), 1)
    raise TypeError(f"don't know how to take features from {type(model).__name__}")
