"""Which examples an edit flipped, next to what the unmodified model made of them.

The unmodified model's record of a split (``baseline_record``: predictions, per-example CE
loss and margin) is computed once per session, split and evaluation path, on the same path as
the edits it is compared with, so a flip is never an artefact of two paths rounding apart.
``group_flips`` lists, per group, the examples that went right → wrong and wrong → right with
that record's loss and margin for each, so a reader can see whether the flips are the hard
(memorized) examples; ``flip_thumbnails`` draws the training images that went wrong.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from labconsole.engine.records.evidence import Evidence, GroupFlips
from labconsole.engine.stage1.interventions import Intervention

if TYPE_CHECKING:
    from labconsole.engine.stage1.session import Session

MAX_FLIPS_LISTED = 500  # per group, split and direction; the counts are always exact


@dataclass(frozen=True)
class BaselineRecord:
    """The unmodified model on one split, in split order: its predicted class, per-example CE
    loss and margin (true-class logit minus the best other logit); loss and margin on the CPU."""

    pred: torch.Tensor
    loss: torch.Tensor
    margin: torch.Tensor


_baselines: weakref.WeakKeyDictionary[Session, dict[tuple[str, str], BaselineRecord]] = weakref.WeakKeyDictionary()


def on_fast_path(session: Session, split: str, interventions: Sequence[Intervention]) -> bool:
    """Whether the session's folded evaluator of ``split`` computes every one of these
    interventions (then the baseline must come from it too, so both share one path)."""
    from labconsole.engine.stage1.folding import supports

    return session.fast_evaluator(split) is not None and all(supports(iv) for iv in interventions)


def _baseline_logits(session: Session, split: str, fast: bool) -> torch.Tensor:
    """Logits of the unmodified model (split order) on the same path as the interventions: the
    session's own baseline on the fast path (no second pass)."""
    kept = session.baseline_logits(split) if fast else None
    if kept is not None:
        return kept
    cache = session.cache(split)
    model = session.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat([model(x).float() for x, _, _ in cache.batches(session.config.batch_size)])
    finally:
        model.train(was_training)


def baseline_record(session: Session, split: str, fast: bool = False) -> BaselineRecord:
    """The unmodified model on ``split`` on the fast path (``fast``, see ``on_fast_path``) or
    the plain one; computed once per session, split and evaluation path."""
    per_session = _baselines.setdefault(session, {})
    key = (split, "fast" if fast else "plain")
    if key not in per_session:
        y = session.cache(split).y
        logits = _baseline_logits(session, split, fast).to(y.device)
        true = logits.gather(1, y[:, None]).squeeze(1)
        other = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
        per_session[key] = BaselineRecord(
            pred=logits.argmax(dim=1),
            loss=F.cross_entropy(logits, y, reduction="none").cpu(),
            margin=(true - other).cpu(),
        )
    return per_session[key]


def group_flips(
    session: Session, split: str, pred_after: torch.Tensor, record: BaselineRecord | None = None
) -> dict[str, GroupFlips]:
    """Per group: split positions that went right → wrong and wrong → right, with the
    unmodified model's CE loss and margin for each (lists capped, counts exact)."""
    record = record if record is not None else baseline_record(session, split)
    cache = session.cache(split)
    y, g = cache.y.cpu(), cache.g.cpu()
    before_ok = record.pred.cpu() == y
    after_ok = pred_after.cpu() == y
    out: dict[str, GroupFlips] = {}
    for j, name in enumerate(session.group_names):
        member = g == j
        wrong = _listed(member & before_ok & ~after_ok, record)
        right = _listed(member & ~before_ok & after_ok, record)
        n = int(member.sum())
        out[name] = GroupFlips(
            n=n,
            n_to_wrong=wrong.n,
            n_to_right=right.n,
            to_wrong=wrong.positions,
            to_wrong_loss=wrong.loss,
            to_wrong_margin=wrong.margin,
            to_right=right.positions,
            to_right_loss=right.loss,
            to_right_margin=right.margin,
            # How hard the flipped examples were for the model, next to the group as a whole.
            group_mean_loss=float(record.loss[member].mean()) if n else None,
        )
    return out


@dataclass(frozen=True)
class _Listed:
    """The examples of one flip direction: how many, and the first ``MAX_FLIPS_LISTED`` with
    the unmodified model's loss and margin (rounded: they are read, not recomputed from)."""

    n: int
    positions: list[int]
    loss: list[float]
    margin: list[float]


def _listed(moved: torch.Tensor, record: BaselineRecord) -> _Listed:
    ids = torch.nonzero(moved).flatten()
    listed = ids[:MAX_FLIPS_LISTED]
    return _Listed(
        n=len(ids),
        positions=[int(i) for i in listed.tolist()],
        loss=[round(float(v), 5) for v in record.loss[listed].tolist()],
        margin=[round(float(v), 5) for v in record.margin[listed].tolist()],
    )


def flip_thumbnails(session: Session, found: Evidence, groups: Sequence[str], per_group: int = 12) -> bytes | None:
    """A PNG grid of the training images that went right → wrong, one row per group in
    ``groups`` (up to ``per_group`` each, ×2 nearest-neighbour); None when nothing flipped."""
    import io

    from PIL import Image

    flips = found.flips.get("train") or {}
    rows = [[int(i) for i in flips[g].to_wrong[:per_group]] if g in flips else [] for g in groups]
    if not any(rows):
        return None
    images = session.cache("train").images
    _, height, width = images.shape[1:]
    scale, pad = 2, 2
    cell_w, cell_h = width * scale + pad, height * scale + pad
    canvas = Image.new("RGB", (per_group * cell_w + pad, len(rows) * cell_h + pad), (255, 255, 255))
    for r, positions in enumerate(rows):
        for c, position in enumerate(positions):
            pixels = images[position].cpu()
            if pixels.shape[0] == 1:
                pixels = pixels.expand(3, -1, -1)
            tile = Image.fromarray(pixels[:3].permute(1, 2, 0).contiguous().numpy()).resize(
                (width * scale, height * scale), Image.Resampling.NEAREST
            )
            canvas.paste(tile, (pad + c * cell_w, pad + r * cell_h))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()
