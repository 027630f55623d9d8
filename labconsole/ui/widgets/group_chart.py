"""Per-group accuracy and worst-group accuracy over epochs (textual-plotext)."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from labconsole.engine.events import EpochResult


def group_abbreviations(groups: list[str]) -> dict[str, str]:
    """Short column heads: initials of the words (``waterbird-land`` → ``WL``); the first four
    letters where initials collide."""
    initials = {g: "".join(w[0] for w in g.replace("_", "-").split("-") if w).upper()[:4] or g[:4] for g in groups}
    if len(set(initials.values())) == len(groups):
        return initials
    return {g: g[:4] for g in groups}


class GroupAccuracyChart(PlotextPlot):
    """One line per group plus WGA for one split; the selected epoch is marked by a vertical line."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.split = "val"

    def show(self, epochs: list[EpochResult], best_epoch: int | None, stage: str = "") -> None:
        """``stage`` names the curve's stage in the title (given when a job has several)."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        points = [e for e in epochs if self.split in e.splits]
        # short: plotext drops a title wider than the plot (about 44 columns at 80×24)
        plt.title(
            (f"{stage} · " if stage else "")
            + f"{self.split} acc. %"
            + (f" · selected epoch {best_epoch}" if best_epoch else "")
        )
        plt.ylim(0, 100)
        if points:
            xs = [e.epoch for e in points]
            metrics = [e.splits[self.split] for e in points]
            for group in metrics[0].groups:
                # 0 where an epoch has no number for the group (no example of it in the split)
                plt.plot(xs, [100 * (m.groups.get(group) or 0.0) for m in metrics], label=group, marker="braille")
            plt.plot(xs, [100 * (m.wga or 0.0) for m in metrics], label="WGA", marker="hd")
            if best_epoch is not None:
                plt.vline(best_epoch, "white")
            if len(xs) <= 12:
                plt.xticks([float(x) for x in xs])
        self.refresh()
