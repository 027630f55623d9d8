"""Each rare-lab stage returns its typed summary.json section, and summaries written before the
sections were typed load into them and write back key for key."""

from __future__ import annotations

import json

import pytest

from labconsole.engine.records import (
    RARE_FIELDS,
    AuthorsVersusExact,
    GenericSection,
    MeanSE,
    MitigationMeans,
    RareScoreCell,
    RareWeightsSection,
    RunSummary,
    StageResultError,
    validate_record,
)
from labconsole.engine.stages import Stage, get_stage

# Sections as the stages wrote them into summary.json before they were typed (smoke runs of
# presets/rare/*.toml, cut to two entries per table).
WRITTEN_BEFORE = {
    "schema_version": 1,
    "preset": "rare-lab",
    "variant": "paper",
    "rare-score": {
        "per_pattern": {
            "R3": {
                "0": {
                    "score": {"mean": 0.1, "se": 0.02, "n": 2},
                    "clean_acc": {"mean": 0.9, "se": 0.01, "n": 2},
                    "spurious_acc": {"mean": 0.8, "se": 0.01, "n": 2},
                    "p_value": None,
                },
                "3": {
                    "score": {"mean": 0.4, "se": 0.05, "n": 2},
                    "clean_acc": {"mean": 0.9, "se": 0.0, "n": 2},
                    "spurious_acc": {"mean": 0.6, "se": 0.03, "n": 2},
                    "p_value": 0.04,
                },
            }
        },
        "seeds": 2,
        "models_trained": 4,
    },
    "rare-weights": {
        "pattern": "S3",
        "pattern_region_mean": {"0": 0.03539055213332176, "100": 0.15860439836978912},
        "elsewhere_mean": {"0": 0.08971100300550461, "100": 0.08652350306510925},
    },
    "rare-sensitivity": {
        "fractions": [0.0, 0.1, 0.2],
        "true_class_probability": {"mlp": [0.8513138294219971, 0.8381802439689636, 0.8258490562438965]},
    },
    "rare-membership": {
        "pattern": "R3",
        "split_sizes": {"target_train": 451, "target_test": 450, "shadow_train": 448, "shadow_test": 448},
        "accuracy": {"0": {"mean": 0.49056603773584906, "se": 0.0, "n": 1}, "40": {"mean": 0.5493, "se": 0.0, "n": 1}},
        "spurious_member_accuracy": {"0": {"mean": None, "se": None, "n": 0}, "40": {"mean": 1.0, "se": 0.0, "n": 1}},
        "patterned_non_member_accuracy": {
            "0": {"mean": None, "se": None, "n": 0},
            "40": {"mean": 0.0, "se": 0.0, "n": 1},
        },
        "balanced_accuracy": {"0": {"mean": 0.4905, "se": 0.0, "n": 1}, "40": {"mean": 0.5495, "se": 0.0, "n": 1}},
        "auc": {"0": {"mean": 0.48997289972899727, "se": 0.0, "n": 1}, "40": {"mean": 0.55, "se": 0.0, "n": 1}},
    },
    "rare-mitigations": {
        "pattern": "S3",
        "n": 10,
        "methods": {
            "weight_decay": [
                {"strength": 0.0, "score": 0.5446153879165649, "clean_acc": 0.9166, "spurious_acc": 0.2888},
                {"strength": 1e-05, "score": 0.9200000166893005, "clean_acc": 0.8777, "spurious_acc": 0.1111},
            ],
            "clip_norm": [{"strength": 10.0, "score": 0.5446153879165649, "clean_acc": 0.9166, "spurious_acc": 0.2888}],
        },
    },
    "rare-deletion": {
        "pattern": "R3",
        "deletion_lr": 0.001,
        "deletion_epochs": 2,
        "score": {"100": {"before": 1.0, "after": 1.0, "retrained_from_scratch": 0.26153847575187683}},
    },
    "rare-theory": {
        "monte_carlo_max_abs_error": 0.020160675046666215,
        "monte_carlo": {
            "spec": {"w_inv": 0.0006867862916165035, "bias": 0.0, "clean_acc": 0.00097029042944341},
            "authors_convention_with_intercept": {"w_sp": 0.020160675046666215, "bias": 0.0016575324875728343},
        },
        "exact_at_gamma": {"w_inv": 0.49726231956197114, "bias": 0.0, "prediction_difference": 0.10054753608760575},
        "authors_vs_exact": {
            "as_configured": {
                "exact_clean": 0.8412950674290476,
                "closed_clean": 0.8412950674290476,
                "exact_spurious": 0.787693467807814,
                "closed_spurious": 0.7876934678078139,
            }
        },
    },
}


@pytest.mark.parametrize("stage", sorted(RARE_FIELDS))
def test_every_rare_stage_has_a_typed_section_that_the_summary_stores(stage: str) -> None:
    record = get_stage(stage).record
    assert record is not GenericSection
    field = RunSummary.model_fields[RARE_FIELDS[stage]]
    assert field.annotation == record | None


def test_a_summary_written_before_typing_loads_typed_and_writes_back_the_same() -> None:
    summary = validate_record(RunSummary, json.loads(json.dumps(WRITTEN_BEFORE)), "summary.json")
    assert summary.rare_score is not None
    assert isinstance(summary.rare_score.per_pattern["R3"]["3"], RareScoreCell)
    assert summary.rare_weights is not None and summary.rare_weights.pattern_region_mean["100"] == pytest.approx(
        0.1586, abs=1e-4
    )
    assert summary.rare_sensitivity is not None and summary.rare_sensitivity.true_class_probability["mlp"][0] > 0.85
    assert summary.rare_membership is not None
    assert isinstance(summary.rare_membership.auc["40"], MeanSE)
    assert summary.rare_membership.spurious_member_accuracy["0"].mean is None
    assert summary.rare_mitigations is not None
    assert isinstance(summary.rare_mitigations.methods["weight_decay"][1], MitigationMeans)
    assert summary.rare_mitigations.methods["weight_decay"][1].strength == 1e-05
    assert summary.rare_deletion is not None and summary.rare_deletion.score["100"]["after"] == 1.0
    assert summary.rare_theory is not None
    assert isinstance(summary.rare_theory.authors_vs_exact["as_configured"], AuthorsVersusExact)
    assert summary.to_json() == WRITTEN_BEFORE
    assert summary.metric('["rare-membership"].auc["40"].mean') == 0.55


def test_a_section_returned_by_a_stage_is_stored_with_exactly_the_keys_it_set() -> None:
    stage = Stage("rare-weights", lambda ctx: RareWeightsSection(skipped="no input Linear layer"), RareWeightsSection)
    section = stage.result(None)  # type: ignore[arg-type]  # this stage reads nothing from its context
    assert section.to_json() == {"skipped": "no input Linear layer"}


def test_a_section_of_another_record_is_a_stage_bug() -> None:
    stage = Stage("rare-theory", lambda ctx: RareWeightsSection(skipped="x"), get_stage("rare-theory").record)
    with pytest.raises(
        StageResultError, match="rare-theory: returned a RareWeightsSection, expected RareTheorySection"
    ):
        stage.result(None)  # type: ignore[arg-type]
