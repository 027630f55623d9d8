"""Image transforms for real datasets (SPEC §1), all returning uint8 tensors [C, H, W].

Normalisation (ImageNet mean/std) is deliberately left out: it happens on the device, in
``TensorCache.normalize`` or the training loop, so decoded images stay 4x smaller in memory.

``decode_eval_images`` decodes a list of files once through the eval transform, in parallel,
and keeps the result in an on-disk cache so reopening a dataset is instant.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torchvision import transforms as T

from labconsole.errors import DataError

# Bump when the decoding pipeline changes, so stale cache files are never read back.
_CACHE_FORMAT_VERSION = 1
# Small sets decode in a blink; caching them would only litter the cache folder.
DISK_CACHE_MIN_IMAGES = 512
DISK_CACHE_MAX_BYTES = 8 * 1024**3

ImageTransform = Callable[[Image.Image], torch.Tensor]


def eval_resize_size(image_size: int) -> int:
    """Side of the square resize before the centre crop: 256 for 224, same ratio otherwise."""
    return round(image_size * 256 / 224)


def _compose(steps: list[Callable[..., object]]) -> ImageTransform:
    """``T.Compose`` typed: torchvision declares no return types, so mypy sees ``Any``."""
    composed: ImageTransform = T.Compose(steps)
    return composed


def eval_transform(image_size: int = 224) -> ImageTransform:
    """Resize((r, r)) → CenterCrop(S) → uint8 tensor; r = 256 when S = 224."""
    size = eval_resize_size(image_size)
    return _compose([T.Resize((size, size)), T.CenterCrop(image_size), T.PILToTensor()])


def train_transform(image_size: int = 224) -> ImageTransform:
    """RandomResizedCrop(S, scale (0.7, 1), ratio (3/4, 4/3)) → horizontal flip → uint8 tensor."""
    return _compose(
        [
            T.RandomResizedCrop(image_size, scale=(0.7, 1.0), ratio=(0.75, 4 / 3)),
            T.RandomHorizontalFlip(),
            T.PILToTensor(),
        ]
    )


def finetune_view_transform(image_size: int = 224) -> ImageTransform:
    """Paper A, Table 1 (supplement): the training augmentation plus rotation 15°,
    affine translate (0.1, 0.1) / scale (0.9, 1.1) and perspective 0.2, in that order."""
    return _compose(
        [
            T.RandomResizedCrop(image_size, scale=(0.7, 1.0), ratio=(0.75, 4 / 3)),
            T.RandomHorizontalFlip(),
            T.RandomRotation(15),
            T.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=(0.9, 1.1)),
            T.RandomPerspective(distortion_scale=0.2),
            T.PILToTensor(),
        ]
    )


def open_image(path: Path | str, channels: int = 3) -> Image.Image:
    """Open and fully decode one image as RGB (channels=3) or grayscale (channels=1).

    Raises DataError naming the file when it is missing, truncated or not an image."""
    mode = "RGB" if channels == 3 else "L"
    try:
        with Image.open(path) as image:
            image.load()  # force the decode now, so truncated files fail here
            return image.convert(mode)
    except FileNotFoundError:
        raise DataError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DataError(f"unreadable image: {path} ({error})") from None


def default_decode_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def decode_eval_images(
    paths: Sequence[Path | str],
    image_size: int,
    channels: int = 3,
    *,
    num_workers: int | None = None,
    use_disk_cache: bool | None = None,
) -> torch.Tensor:
    """Decode every file once through the eval transform → uint8 tensor [N, C, S, S].

    Decoding runs in a thread pool (Pillow releases the GIL while decoding and resizing).
    ``use_disk_cache``: None = automatic (sets of ≥ 512 images), True/False to force.
    The cache lives in ``$LABCONSOLE_CACHE_DIR`` or ``~/.cache/labconsole/decoded``; it is
    keyed by every file's path, size and modification time plus the image size, so an edited
    file invalidates it. Raises DataError naming the first unreadable file.
    """
    files = [Path(p) for p in paths]
    if not files:
        return torch.empty((0, channels, image_size, image_size), dtype=torch.uint8)
    if use_disk_cache is None:
        nbytes = len(files) * channels * image_size * image_size
        use_disk_cache = len(files) >= DISK_CACHE_MIN_IMAGES and nbytes <= DISK_CACHE_MAX_BYTES
        use_disk_cache = use_disk_cache and os.environ.get("LABCONSOLE_DECODE_CACHE", "1") != "0"
    cache_file = _cache_file(files, image_size, channels) if use_disk_cache else None
    if cache_file is not None and cache_file.exists():
        cached = _read_cache(cache_file, len(files), channels, image_size)
        if cached is not None:
            return cached

    transform = eval_transform(image_size)
    out = torch.empty((len(files), channels, image_size, image_size), dtype=torch.uint8)

    def decode_one(index: int) -> None:
        out[index] = transform(open_image(files[index], channels))

    workers = num_workers if num_workers is not None else default_decode_workers()
    if workers <= 1:
        for index in range(len(files)):
            decode_one(index)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # map() re-raises the first failure in input order, i.e. the first unreadable file.
            for _ in pool.map(decode_one, range(len(files))):
                pass

    if cache_file is not None:
        _write_cache(cache_file, out)
    return out


def cache_dir() -> Path:
    root = os.environ.get("LABCONSOLE_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "labconsole"
    return base / "decoded"


def _cache_file(paths: list[Path], image_size: int, channels: int) -> Path | None:
    digest = hashlib.sha256(f"v{_CACHE_FORMAT_VERSION}|{image_size}|{channels}|{len(paths)}".encode())
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            return None  # a missing file: decoding will raise the readable error
        digest.update(f"\n{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return cache_dir() / f"{digest.hexdigest()[:32]}-{image_size}px.pt"


def _read_cache(cache_file: Path, count: int, channels: int, image_size: int) -> torch.Tensor | None:
    try:
        images = torch.load(cache_file, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # a damaged cache file is simply rebuilt
        return None
    if not isinstance(images, torch.Tensor) or tuple(images.shape) != (count, channels, image_size, image_size):
        return None
    if images.dtype != torch.uint8:
        return None
    return images.clone()  # detach from the memory map so the file may be replaced later


def _write_cache(cache_file: Path, images: torch.Tensor) -> None:
    """Atomic write; a failure only costs the next decode."""
    import io

    from labconsole.engine.runs import atomic_write_bytes

    buffer = io.BytesIO()
    torch.save(images, buffer)
    with contextlib.suppress(OSError):
        atomic_write_bytes(cache_file, buffer.getvalue())
