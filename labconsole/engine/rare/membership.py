"""Black-box membership inference (Shokri et al. 2017) as Paper B runs it (SPEC §6).

Four disjoint splits: target-train, target-test, shadow-train, shadow-test. Target and shadow
models are trained the same way (spurious examples only in target-train). Attack features: the
softmax output sorted in decreasing order plus a "prediction correct" bit, standardised. A logistic
regression, C ∈ {0.01, 0.1, 1, 10} by 3-fold CV, learns members vs non-members on the shadow model
and is tested on the target model. Non-members are always scored on their own held-out split —
never on training outputs (the authors' notebook reused those; we do not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

ATTACK_C_GRID = (0.01, 0.1, 1.0, 10.0)
SPLIT_NAMES = ("target_train", "target_test", "shadow_train", "shadow_test")


def attack_features(probs: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """[N, C + 1]: probabilities sorted high→low, then 1.0 where argmax == label."""
    sorted_probs = probs.sort(dim=1, descending=True).values
    correct = (probs.argmax(1) == labels).float().unsqueeze(1)
    return torch.cat([sorted_probs, correct], dim=1).cpu().numpy().astype(np.float64)


def four_way_split(labels: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Disjoint, stratified, (nearly) equal quarters of ``labels``' indices."""
    generator = torch.Generator().manual_seed(int(seed) * 31 + 5)
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in SPLIT_NAMES}
    offset = 0
    for cls in torch.unique(labels.cpu()).tolist():
        idx = torch.nonzero(labels.cpu() == cls).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        # Rotate which quarter gets the remainder so quarter sizes stay balanced overall.
        chunks = torch.tensor_split(idx, 4)
        for k, name in enumerate(SPLIT_NAMES):
            parts[name].append(chunks[(k + offset) % 4])
        offset += len(idx) % 4
    return {name: torch.cat(chunks).sort().values for name, chunks in parts.items()}


@dataclass
class AttackResult:
    accuracy: float  # on target members + target non-members
    member_accuracy: float  # fraction of members flagged "member" (true-positive rate)
    non_member_accuracy: float  # fraction of non-members flagged "non-member" (true-negative rate)
    balanced_accuracy: float  # mean of the two rates: 0.5 = no better than a constant guess
    auc: float | None  # ROC AUC of the attack's member probability, members vs non-members
    spurious_member_accuracy: float | None  # fraction of spurious members flagged "member"
    # The counterpart: held-out target-class images with the pattern added (never trained on),
    # fraction flagged "non-member". High spurious-member accuracy with high accuracy here
    # means the attack recognises *membership*, not merely the pattern.
    patterned_non_member_accuracy: float | None
    best_c: float
    shadow_accuracy: float  # attack accuracy on its own (shadow) training data

    def to_dict(self) -> dict[str, float | None]:
        return dict(self.__dict__)


def fit_attack(shadow_in: np.ndarray, shadow_out: np.ndarray, seed: int = 0) -> Any:
    """Standardise + logistic regression, C chosen by 3-fold CV on the shadow data."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = np.concatenate([shadow_in, shadow_out])
    target = np.concatenate([np.ones(len(shadow_in)), np.zeros(len(shadow_out))])
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    search = GridSearchCV(
        pipeline,
        {"logisticregression__C": list(ATTACK_C_GRID)},
        cv=StratifiedKFold(3, shuffle=True, random_state=seed),
        scoring="accuracy",
    )
    search.fit(features, target)
    return search


def evaluate_attack(
    attack: Any,
    target_in: np.ndarray,
    target_out: np.ndarray,
    spurious_rows: np.ndarray | None,
    shadow_in: np.ndarray,
    shadow_out: np.ndarray,
    patterned_out: np.ndarray | None = None,
) -> AttackResult:
    """``spurious_rows``: indices into ``target_in`` of the spurious training examples;
    ``patterned_out``: features of held-out non-members carrying the pattern."""
    from sklearn.metrics import roc_auc_score

    pred_in = attack.predict(target_in)
    pred_out = attack.predict(target_out)
    correct = np.concatenate([pred_in == 1, pred_out == 0])
    shadow_pred = np.concatenate([attack.predict(shadow_in) == 1, attack.predict(shadow_out) == 0])
    spurious = None
    if spurious_rows is not None and len(spurious_rows):
        spurious = float(np.mean(pred_in[spurious_rows] == 1))
    patterned = None
    if patterned_out is not None and len(patterned_out):
        patterned = float(np.mean(attack.predict(patterned_out) == 0))
    member_rate, non_member_rate = float(np.mean(pred_in == 1)), float(np.mean(pred_out == 0))
    auc = None
    if len(target_in) and len(target_out):
        scores = attack.predict_proba(np.concatenate([target_in, target_out]))[:, 1]
        truth = np.concatenate([np.ones(len(target_in)), np.zeros(len(target_out))])
        auc = float(roc_auc_score(truth, scores))
    return AttackResult(
        accuracy=float(correct.mean()),
        member_accuracy=member_rate,
        non_member_accuracy=non_member_rate,
        balanced_accuracy=(member_rate + non_member_rate) / 2,
        auc=auc,
        spurious_member_accuracy=spurious,
        patterned_non_member_accuracy=patterned,
        best_c=float(attack.best_params_["logisticregression__C"]),
        shadow_accuracy=float(shadow_pred.mean()),
    )
