"""[model]: backbone, initial weights, and a checkpoint to start from."""

from __future__ import annotations

from pydantic import Field

from labconsole.config.base import Section


class ModelConfig(Section):
    backbone: str = "cifar_resnet8"
    # "none", a torchvision enum name ("IMAGENET1K_V1"), a timm pretrained tag ("pretrained"),
    # or a local file (.pth / .safetensors). Hub downloads happen only with allow_download.
    weights: str = "none"
    allow_download: bool = False
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
