"""A greyscale image drawn with half blocks: two pixel rows per terminal row."""

from __future__ import annotations

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget


def grey(value: float) -> Color:
    level = max(0, min(255, round(value * 255)))
    return Color.from_rgb(level, level, level)


class HalfBlockImage(Widget):
    """``pixels`` is rows × cols of floats in [0, 1]; each cell shows an upper pixel (foreground
    of "▀") over a lower one (background)."""

    DEFAULT_CSS = """
    HalfBlockImage { width: auto; height: auto; }
    """

    def __init__(self, pixels: list[list[float]] | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.pixels: list[list[float]] = pixels or []

    def show(self, pixels: list[list[float]]) -> None:
        self.pixels = pixels
        self.refresh(layout=True)

    def get_content_width(self, container: object, viewport: object) -> int:
        return max((len(row) for row in self.pixels), default=0)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return (len(self.pixels) + 1) // 2

    def render_line(self, y: int) -> Strip:
        top_index, bottom_index = 2 * y, 2 * y + 1
        if top_index >= len(self.pixels):
            return Strip.blank(self.size.width)
        top = self.pixels[top_index]
        bottom = self.pixels[bottom_index] if bottom_index < len(self.pixels) else [0.0] * len(top)
        segments = [Segment("▀", Style(color=grey(t), bgcolor=grey(b))) for t, b in zip(top, bottom)]
        return Strip(segments).crop_extend(0, self.size.width, None)
