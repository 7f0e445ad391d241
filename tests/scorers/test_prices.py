"""Prices of judge tokens: genai-prices' bundled data, offline, and the operator's override."""

from decimal import Decimal

import pytest

from scoring.scorers import prices


def test_bundled_price_of_a_known_model():
    """gpt-4o-mini costs what the bundled price database says: $0.15 and $0.60 per million."""
    cost = prices.usage_cost("openai", "gpt-4o-mini", 1_000_000, 1_000_000)
    assert (cost["prompt_tokens_total_cost"], cost["completion_tokens_total_cost"]) == (0.15, 0.6)
    assert cost["cost_source"] == "genai-prices"


def test_operator_override_wins_for_self_hosted_models(settings):
    """SCORING_PRICES prices a model the database does not know, per provider or for all of its
    models (`provider/*`)."""
    settings.SCORING_PRICES = {"local/llama-3-8b": {"input_per_mtok": 0.1, "output_per_mtok": 0.2}, "lab/*": {}}
    assert prices.unit_prices("local", "llama-3-8b") == (Decimal("0.1"), Decimal("0.2"))
    assert prices.usage_cost("local", "llama-3-8b", 10, 10)["cost_source"] == "SCORING_PRICES"
    assert prices.unit_prices("lab", "anything") == (Decimal(0), Decimal(0))


def test_unknown_model_says_how_to_price_it():
    """A model nobody prices raises UnknownPrice naming the setting that fixes it."""
    with pytest.raises(prices.UnknownPrice, match="SCORING_PRICES"):
        prices.unit_prices("local", "a-model-no-database-knows")
    assert prices.price_or_none("local", "a-model-no-database-knows", 1, 1) is None
