"""Check an incident report against the broker, read-only: `ordersync analyze --verify` (issue 19).

The report says what the logs and exports showed; the on-call engineer's next question is what the broker
shows *now*. `check_at_broker` answers it through the `Broker` port, never placing, cancelling or editing
anything, in as few reads as the broker's API allows:

1. every position (one request);
2. per batch of up to 100 affected symbols, the pages of `GET /v2/orders?status=all&after=...&symbols=...`
   from a minute before the earliest time the report mentions (one request per 500 orders), and the
   open orders of those symbols (`status=open&symbols=...`: the sells holding shares, however old);
3. only then, one by one, the orders the report names that no page held (by id, or by client order id
   when that is all the log has). An id that is not an Alpaca order id is reported unknown without asking.

Reads are counted against `max_requests`, a stated share of Alpaca's 200 requests/minute (the default 50
is a quarter); what the budget did not cover is listed, never silently dropped, and an order the broker
does not know is reported, not an error. From what was read: per affected symbol the shares held, the
open sells holding them (ours, i.e. named in the log, or not) and the shares left unprotected now; per
parent row its status, filled quantity and fill time now, and a verdict that confirms or corrects the
log-based cause. Kept outside `forensics` (which never imports a broker adapter) and outside `brokers`
(which knows nothing of reports).
"""

from __future__ import annotations

from ordersync.incident_check.model import BUDGET_PER_MINUTE, BrokerCheck, Holder, ParentCheck, SymbolAtBroker
from ordersync.incident_check.reads import check_at_broker
from ordersync.incident_check.render import check_json, check_to_dict, iter_check_html, render_check_markdown

__all__ = [
    "BUDGET_PER_MINUTE",
    "BrokerCheck",
    "Holder",
    "ParentCheck",
    "SymbolAtBroker",
    "check_at_broker",
    "check_json",
    "check_to_dict",
    "iter_check_html",
    "render_check_markdown",
]
