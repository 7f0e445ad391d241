"""The price of a judge's tokens: the operator's override per provider/model (SCORING_PRICES), else
the price database bundled with the pinned `genai-prices` package (read offline, never fetched)."""

import logging
from decimal import Decimal
from functools import lru_cache

from django.conf import settings

logger = logging.getLogger(__name__)

MILLION = Decimal(1_000_000)
# The rule of thumb when a scorer has no history: English prose runs about four characters per
# token for OpenAI's tokenizers; an answer is taken at its max_tokens, or this when unset.
CHARS_PER_TOKEN = 4
COMPLETION_TOKENS_DEFAULT = 256


class UnknownPrice(Exception):
    """Neither the operator nor the price database knows this model's price."""


def _override(provider: str, model: str) -> tuple[Decimal, Decimal] | None:
    prices = settings.SCORING_PRICES or {}
    entry = prices.get(f"{provider}/{model}") or prices.get(f"{provider}/*")
    if not isinstance(entry, dict):
        return None
    return Decimal(str(entry.get("input_per_mtok", 0))), Decimal(str(entry.get("output_per_mtok", 0)))


@lru_cache(maxsize=256)
def _database_price(provider: str, model: str) -> tuple[Decimal, Decimal] | None:
    from genai_prices import Usage, calc_price

    # Our provider names are the operator's; the database knows providers by their own ids, so a
    # provider it does not know is tried as a plain model name.
    for provider_id in (provider, None):
        try:
            per_million = calc_price(
                Usage(input_tokens=1_000_000, output_tokens=1_000_000), model, provider_id=provider_id
            )
        except (LookupError, ValueError):
            continue
        return Decimal(per_million.input_price), Decimal(per_million.output_price)
    return None


def unit_prices(provider: str, model: str) -> tuple[Decimal, Decimal]:
    """USD per million input and output tokens of `provider/model`; UnknownPrice if nobody knows."""
    prices = _override(provider, model) or _database_price(provider, model)
    if prices is None:
        raise UnknownPrice(
            f"No price is known for {provider}/{model}: set it in SCORING_PRICES "
            '(e.g. {"%s/%s": {"input_per_mtok": 0.5, "output_per_mtok": 1.5}})' % (provider, model)
        )
    return prices


def usage_cost(provider: str, model: str, prompt_tokens: int, completion_tokens: int) -> dict:
    """The cost of a request in Weave's shape for `summary.weave.costs[<model>]`."""
    per_input, per_output = unit_prices(provider, model)
    prompt_cost = per_input * prompt_tokens / MILLION
    completion_cost = per_output * completion_tokens / MILLION
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "requests": 1,
        "prompt_token_cost": float(per_input / MILLION),
        "completion_token_cost": float(per_output / MILLION),
        "prompt_tokens_total_cost": float(prompt_cost),
        "completion_tokens_total_cost": float(completion_cost),
        "total_cost": float(prompt_cost + completion_cost),
        "cost_source": "SCORING_PRICES" if _override(provider, model) else "genai-prices",
    }


def price_or_none(provider: str, model: str, prompt_tokens: int, completion_tokens: int) -> dict | None:
    try:
        return usage_cost(provider, model, prompt_tokens, completion_tokens)
    except UnknownPrice as exc:
        logger.warning("%s", exc)
        return None
