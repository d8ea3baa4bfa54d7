"""Best only when separated: bootstrap intervals over seeds and paired differences against the leader."""

from __future__ import annotations

import math

from descend.report.summary import rank
from descend.report.uncertainty import bootstrap_ci, paired_difference

TARGET = {"metric": "val_accuracy", "value": 0.95, "mode": "max"}


def optimizer(values: list[float | None]) -> dict:
    finite = [v for v in values if v is not None]
    return {
        "seeds": list(range(len(values))),
        "final": {
            "val_accuracy": {
                "mean": sum(finite) / len(finite) if finite else None,
                "values": values,
                "n": len(finite),
            }
        },
        "steps_to_target": {"mean": None},
    }


def test_bootstrap_interval_holds_the_mean_and_needs_two_values() -> None:
    low, high = bootstrap_ci([0.97, 0.98, 0.99, 0.975])
    assert low <= 0.97875 <= high and low >= 0.97 and high <= 0.99
    assert bootstrap_ci([0.9]) is None and bootstrap_ci([]) is None


def test_a_paired_difference_is_separated_only_when_every_seed_agrees() -> None:
    ahead = paired_difference(
        {0: 0.98, 1: 0.99, 2: 0.985}, {0: 0.97, 1: 0.98, 2: 0.98}, higher_is_better=True
    )
    assert ahead["separated"] and ahead["ci"][0] > 0
    mixed = paired_difference(
        {0: 0.98, 1: 0.99, 2: 0.975}, {0: 0.97, 1: 0.98, 2: 0.98}, higher_is_better=True
    )
    assert not mixed["separated"] and mixed["ci"][0] < 0 < mixed["ci"][1]
    # A loss is lower-is-better: the sign follows the mode.
    lower = paired_difference({0: 0.1, 1: 0.2}, {0: 0.3, 1: 0.4}, higher_is_better=False)
    assert lower["separated"] and math.isclose(lower["mean"], 0.2)


def test_a_diverged_optimizer_is_separated_from_the_leader() -> None:
    paired = paired_difference({0: 0.98, 1: 0.97}, {0: None, 1: math.nan}, higher_is_better=True)
    assert paired["separated"]


def test_overlapping_optimizers_are_tied_and_no_best_is_named() -> None:
    # As on digits: everything between 0.979 and 0.985 with seed spread larger than the gaps.
    per = {
        "sgd": optimizer([0.979, 0.984, 0.981]),
        "adam": optimizer([0.985, 0.980, 0.983]),
        "adagrad": optimizer([0.90, 0.91, 0.905]),
    }
    ranked = rank(per, TARGET)
    assert ranked["leader"] == "adam" and ranked["best_optimizer"] is None
    assert ranked["tied"] == ["adam", "sgd"]
    assert ranked["verdict"].startswith("No single best on final val_accuracy: adam, sgd are tied")
    assert per["adagrad"]["vs_leader"]["separated"]
    assert per["adam"]["final"]["val_accuracy"]["ci"] is not None


def test_a_separated_leader_is_named_with_its_margin() -> None:
    per = {"sgd": optimizer([0.90, 0.91, 0.92]), "adam": optimizer([0.95, 0.97, 0.96])}
    ranked = rank(per, TARGET)
    assert ranked["best_optimizer"] == "adam" and ranked["tied"] == []
    assert "adam is best on final val_accuracy" in ranked["verdict"]
    assert "ahead of sgd by 0.05" in ranked["verdict"]


def test_one_seed_never_names_a_best() -> None:
    ranked = rank({"sgd": optimizer([0.9]), "adam": optimizer([0.95])}, TARGET)
    assert ranked["best_optimizer"] is None and "one seed cannot separate them" in ranked["verdict"]
