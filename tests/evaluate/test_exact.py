"""Exact match after strip / lower-case / whitespace collapse."""

from __future__ import annotations

from ray_vlm.evaluate import exact_match, exact_match_per_sample


def test_exact_match_normalises_case_and_whitespace_only() -> None:
    predictions = ["  Aceta  ", "IBUPROFEN 200mg", "para cetamol", "Amoxil."]
    references = [["aceta"], ["ibuprofen \n 200MG"], ["paracetamol"], ["amoxil", "Amoxil"]]
    assert exact_match_per_sample(predictions, references) == [1.0, 1.0, 0.0, 0.0]
    assert exact_match(predictions, references) == 0.5
