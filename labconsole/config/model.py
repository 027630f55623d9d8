"""[model]: backbone, initial weights, and a checkpoint to start from."""

from __future__ import annotations

from pydantic import Field

from labconsole.config.base import Section


class ModelConfig(Section):
    # A registered name (engine.models.factory) or any timm model as "timm:<name>[.<tag>]".
    backbone: str = "cifar_resnet8"
    # "none", a torchvision enum name ("IMAGENET1K_V1"), "pretrained" (timm's default tag, or the
    # backbone's), "timm:<tag>", or a local file (.pth / .safetensors). Hub downloads happen only
    # with allow_download.
    weights: str = "none"
    allow_download: bool = False
    # A legacy .pth is read as tensors only (torch.load(weights_only=True)). One that pickles whole
    # objects needs full unpickling, which can run code from the file: only for files you trust.
    allow_pickle: bool = Field(False, description="fully unpickle legacy .pth files that store more than tensors")
    checkpoint: str = Field("", description="start from this checkpoint (run dir or file)")
    width: int = Field(16, ge=1, description="base width of the small CPU models")

    def smoke(self) -> ModelConfig:
        # Small CPU models stay (Paper B's MLPs must stay MLPs); big backbones become ResNet-8.
        small = self.backbone in SMALL_BACKBONES
        return self.model_copy(
            update={
                "backbone": self.backbone if small else "cifar_resnet8",
                "weights": "none",
                "checkpoint": "",
                "width": min(self.width, 8),
            }
        )


# Mirrors the "small" family of engine.models.factory without importing torch here.
SMALL_BACKBONES = ("cifar_resnet8", "cifar_resnet20", "small_cnn", "mlp", "mlp_small", "mlp_large")
