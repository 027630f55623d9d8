"""Losses of Paper A's Stage II (SPEC §5): NT-Xent between the target and auxiliary branches,
plus a supervised term on the target (λ·MSE(one-hot, softmax) or λ·CE).

NT-Xent follows SimCLR: the 2N vectors of a batch (N from each branch) are compared by cosine
similarity / τ; for each anchor the positive is the other branch's vector of the *same* image,
the negatives are the vectors of the *other* images of the batch (from both branches), and the
anchor itself is excluded. The loss is the mean over all 2N anchors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from labconsole.errors import UserError


def ntxent_masks(n: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) boolean masks over the [2N, 2N] similarity matrix of
    ``cat([z, z_plus])``: row i's positive is column (i + N) mod 2N, its negatives are every
    other column except i itself."""
    size = 2 * n
    index = torch.arange(size, device=device)
    positive = torch.zeros(size, size, dtype=torch.bool, device=device)
    positive[index, (index + n) % size] = True
    negative = ~positive & ~torch.eye(size, dtype=torch.bool, device=device)
    return positive, negative


def nt_xent(z: torch.Tensor, z_plus: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent(z, z⁺; in-batch negatives, τ). ``z`` and ``z_plus`` are [N, d]; row i of both
    comes from the same image."""
    if temperature <= 0:
        raise UserError(f"finetune.temperature = {temperature}: the NT-Xent temperature τ must be > 0")
    if z.shape != z_plus.shape or z.dim() != 2:
        raise ValueError(
            f"nt_xent needs two [N, d] tensors of the same shape, got {tuple(z.shape)} and {tuple(z_plus.shape)}"
        )
    n = z.shape[0]
    features = F.normalize(torch.cat([z, z_plus]).float(), dim=1)
    similarity = features @ features.t() / temperature
    # The anchor's similarity to itself never enters the denominator.
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    similarity = similarity.masked_fill(self_mask, float("-inf"))
    targets = (torch.arange(2 * n, device=z.device) + n) % (2 * n)
    return F.cross_entropy(similarity, targets)


def mse_onehot(logits: torch.Tensor, y: torch.Tensor, *, probabilities: bool = False) -> torch.Tensor:
    """MSE(one-hot(y), softmax(logits)), averaged over examples and classes (``nn.MSELoss``).
    With ``probabilities`` the input already is a probability vector."""
    probs = logits.float() if probabilities else logits.float().softmax(dim=1)
    onehot = F.one_hot(y, num_classes=probs.shape[1]).to(probs.dtype)
    return F.mse_loss(probs, onehot)


def supervised_loss(outputs: torch.Tensor, y: torch.Tensor, kind: str, *, probabilities: bool = False) -> torch.Tensor:
    """The supervised term on the target branch. ``probabilities`` means the model's outputs are
    already softmax probabilities (the authors' head); CE then applies a second softmax, as
    their code does (``CrossEntropyLoss`` on probabilities)."""
    if kind == "mse":
        return mse_onehot(outputs, y, probabilities=probabilities)
    if kind == "ce":
        return F.cross_entropy(outputs.float(), y)
    raise UserError(f'finetune.supervised = {kind!r}: expected "mse" or "ce"')


def contrastive_loss(target_out: torch.Tensor, aux_out: torch.Tensor, temperature: float, form: str) -> torch.Tensor:
    """``two-views`` (paper): NT-Xent(target(x1), aux(x2)).
    ``double-same-view`` (authors' code): NT-Xent(f, f̃.detach()) + NT-Xent(f.detach(), f̃), both
    branches fed the same view, so each term pulls one branch towards a fixed copy of the other."""
    if form == "two-views":
        return nt_xent(target_out, aux_out, temperature)
    if form == "double-same-view":
        return nt_xent(target_out, aux_out.detach(), temperature) + nt_xent(target_out.detach(), aux_out, temperature)
    raise UserError(f'finetune.contrastive = {form!r}: expected "two-views" or "double-same-view"')
