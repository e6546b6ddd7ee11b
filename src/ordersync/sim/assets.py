"""GET /v2/assets and /v2/assets/{symbol_or_id}: the simulator's symbols as Alpaca assets.

Only the symbols the scenario lists (or `POST /sim/price` adds) exist, so a client can discover them instead
of meeting `422 asset "AAPL" not found` on its first order. Each is an active, tradable `us_equity` on its
listing exchange. The per-asset flags come from the symbol's record when it carries them (`fractionable`,
`shortable`, `easy_to_borrow`, `marginable`, `tradable`, `name`), and default to what a large US stock has.

Filters as Alpaca's: `status` (active | inactive), `asset_class` (us_equity | us_option | crypto |
crypto_perp; only us_equity has assets here), `exchange`, `attributes` (comma list; an asset is listed when
it has any of them, and simulator assets have none). Unknown symbol or id: 404 40410000 "asset not found"."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .model import SymbolInfo
from .wire import ApiError, JsonDict

__all__ = ["AssetQuery", "asset_json", "find_asset", "parse_asset_query", "select_assets"]

ASSET_STATUSES = ("active", "inactive")
ASSET_CLASSES = ("us_equity", "us_option", "crypto", "crypto_perp")
# alpaca-py 0.44's AssetExchange values (an asset on any other exchange would not parse in the SDK)
EXCHANGES = (
    "AMEX", "ARCA", "ASCX", "BATS", "NYSE", "NASDAQ", "NYSEARCA", "FTXU", "CBSE", "GNSS", "ERSX", "OTC",
    "CRYPTO",
)  # fmt: skip


@dataclass(frozen=True)
class AssetQuery:
    status: str | None = None
    asset_class: str | None = None
    exchange: str | None = None
    attributes: frozenset[str] | None = None


def parse_asset_query(params: Mapping[str, str]) -> AssetQuery:
    """Parse GET /v2/assets filters.

    Raises:
        ApiError: 422 40010001 naming the bad parameter.
    """
    status = _choice(params.get("status"), ASSET_STATUSES, "status")
    asset_class = _choice(params.get("asset_class"), ASSET_CLASSES, "asset_class")
    exchange = _choice(params.get("exchange"), EXCHANGES, "exchange")
    raw_attributes = params.get("attributes")
    attributes = (
        None
        if raw_attributes is None
        else frozenset(a.strip() for a in raw_attributes.split(",") if a.strip())
    )
    return AssetQuery(status, asset_class, exchange, attributes or None)


def select_assets(symbols: Iterable[SymbolInfo], query: AssetQuery) -> list[JsonDict]:
    """The assets `query` selects, by symbol."""
    chosen = [asset_json(info) for info in sorted(symbols, key=lambda i: i.symbol)]
    return [a for a in chosen if _matches(a, query)]


def find_asset(symbols: Mapping[str, SymbolInfo], symbol_or_id: str) -> JsonDict:
    """The asset with this symbol (case-insensitive) or asset id.

    Raises:
        ApiError: 404 40410000 "asset not found".
    """
    info = symbols.get(symbol_or_id.upper())
    if info is None and _is_uuid(symbol_or_id):
        info = next((i for i in symbols.values() if i.asset_id == symbol_or_id.lower()), None)
    if info is None:
        raise ApiError.not_found("asset not found")
    return asset_json(info)


def asset_json(info: SymbolInfo) -> JsonDict:
    """Render a symbol as Alpaca's Asset (fields alpaca-py's `Asset` model requires, and the margin ones)."""
    return {
        "id": info.asset_id,
        "class": "us_equity",
        "exchange": info.exchange,
        "symbol": info.symbol,
        "name": str(getattr(info, "name", None) or f"{info.symbol} (simulated)"),
        "status": "active",
        "tradable": bool(getattr(info, "tradable", True)),
        "marginable": bool(getattr(info, "marginable", True)),
        "maintenance_margin_requirement": 30,
        "margin_requirement_long": "30",
        "margin_requirement_short": "30",
        "shortable": bool(getattr(info, "shortable", True)),
        "easy_to_borrow": bool(getattr(info, "easy_to_borrow", True)),
        "fractionable": bool(getattr(info, "fractionable", True)),
        "attributes": [],
    }


def _matches(asset: JsonDict, query: AssetQuery) -> bool:
    if query.status is not None and asset["status"] != query.status:
        return False
    if query.asset_class is not None and asset["class"] != query.asset_class:
        return False
    if query.exchange is not None and asset["exchange"] != query.exchange:
        return False
    return query.attributes is None or bool(query.attributes & set(asset["attributes"]))


def _choice(raw: str | None, allowed: tuple[str, ...], field: str) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise ApiError.unprocessable(f"invalid {field}: {raw!r}"[:200])
    return raw


def _is_uuid(text: str) -> bool:
    if len(text) != 36:
        return False
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
