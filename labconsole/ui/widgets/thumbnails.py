"""Colour images as Rich text: each character is "▀" with the upper pixel as its foreground and
the lower one as its background, so one text row holds two pixel rows."""

from __future__ import annotations

from collections.abc import Sequence

from rich.color import Color
from rich.style import Style
from rich.text import Text

from labconsole.ui.engine_port import RGB, ImagePixels

BLACK: RGB = (0, 0, 0)


def half_block_lines(pixels: ImagePixels) -> list[Text]:
    """One Text per pair of pixel rows (an odd last row over black)."""
    lines = []
    for top_row in range(0, len(pixels), 2):
        top = pixels[top_row]
        bottom = pixels[top_row + 1] if top_row + 1 < len(pixels) else [BLACK] * len(top)
        line = Text(no_wrap=True, overflow="crop")
        for upper, lower in zip(top, bottom):
            line.append("▀", Style(color=Color.from_rgb(*upper), bgcolor=Color.from_rgb(*lower)))
        lines.append(line)
    return lines


def thumbnail_rows(images: Sequence[ImagePixels], per_row: int, gap: int = 1) -> Text:
    """The images side by side, ``per_row`` to a row of thumbnails, ``gap`` columns apart
    (rows of thumbnails a blank line apart)."""
    out = Text(no_wrap=True, overflow="crop")
    per_row = max(1, per_row)
    for start in range(0, len(images), per_row):
        chunk = [half_block_lines(image) for image in images[start : start + per_row]]
        height = max(len(lines) for lines in chunk)
        if start:
            out.append("\n\n")
        for y in range(height):
            if y:
                out.append("\n")
            for i, lines in enumerate(chunk):
                if i:
                    out.append(" " * gap)
                width = len(lines[0]) if lines else 0
                out.append_text(lines[y] if y < len(lines) else Text(" " * width))
    return out


def fitting(width: int, size: int, gap: int = 1) -> int:
    """How many ``size``-column thumbnails, ``gap`` apart, fit in ``width`` columns."""
    return max(1, (width + gap) // (size + gap))
