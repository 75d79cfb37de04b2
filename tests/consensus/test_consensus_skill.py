"""Member skill: which members predict their own targets, and whether enough of them do."""

from __future__ import annotations

import json

import pytest

from ensemble_lens.consensus import member_skill


def _metrics(*r2):
    return {f"m{i}": {"val_r2": v} for i, v in enumerate(r2)}


def test_all_skilled_members_pass():
    s = member_skill(_metrics(0.99, 0.97, 0.6), min_r2=0.5, min_fraction=0.8)
    assert s.verdict == "skilled" and s.unskilled == [] and s.median_val_r2 == 0.97
    assert "3 of 3 members predict their own targets" in s.reason


def test_too_few_skilled_members_stop_the_study():
    s = member_skill(_metrics(0.99, 0.1, -0.01, 0.0), min_r2=0.5, min_fraction=0.8)
    assert s.verdict == "unskilled"
    assert s.skilled == ["m0"] and s.unskilled == ["m1", "m2", "m3"]
    assert "1 of 4 members" in s.reason and "no formula is fitted" in s.reason


def test_the_share_is_inclusive():
    # 4 of 5 skilled reach a share of exactly 0.8
    assert member_skill(_metrics(1, 1, 1, 1, 0), min_r2=0.5, min_fraction=0.8).verdict == "skilled"
    assert member_skill(_metrics(1, 1, 1, 0, 0), min_r2=0.5, min_fraction=0.8).verdict == (
        "unskilled"
    )


def test_members_without_a_score_are_listed_not_counted():
    metrics = {**_metrics(0.9, 0.95), "ingested": None, "odd": {"val_r2": float("nan")}}
    s = member_skill(metrics, min_r2=0.5, min_fraction=1.0)
    assert s.verdict == "skilled" and s.unknown == ["ingested", "odd"]
    none = member_skill({"a": None, "b": {}}, min_r2=0.5, min_fraction=0.8)
    assert none.verdict == "unknown" and none.median_val_r2 is None
    assert "skill unknown" in none.reason


def test_attrs_are_json_and_complete():
    attrs = member_skill(_metrics(0.2, 0.9), min_r2=0.5, min_fraction=0.8).attrs()
    assert json.loads(json.dumps(attrs)) == attrs
    assert attrs["member_skill"] == "unskilled" and attrs["members_unskilled"] == ["m0"]
    assert attrs["median_val_r2"] == pytest.approx(0.55)
    assert "median_val_r2" not in member_skill({"a": None}, min_r2=0.5, min_fraction=1).attrs()


def test_a_share_outside_0_1_is_refused():
    with pytest.raises(ValueError, match=r"min_fraction: expected a share in \(0, 1\], got 0"):
        member_skill(_metrics(1.0), min_r2=0.5, min_fraction=0)
