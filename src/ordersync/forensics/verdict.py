"""Decide the root cause of `40310000` refusals from what the error bodies say, never from assumption.

Two different mistakes produce the same code (docs/alpaca.md §4.7, docs/alpaca.md §4 and §6.3):

- the sell came before the buy filled: no shares yet, so `existing_qty` is 0 or Alpaca answers
  "cannot open a short sell while a long buy order is open" (or, for a stop beside a working limit
  buy, "potential wash trade detected", docs/alpaca.md §6.3);
- the shares existed and another open order had reserved them: `existing_qty` > 0 and
  `held_for_orders` = `existing_qty`, the holder named in `related_orders` (a take-profit beside a
  stop-loss, or a retried take-profit competing with the first).

A third shape is a sell asking for more shares than are free (typically a child sized to the whole
order while the parent had filled only in part). This
module classifies each body, tallies the classes, picks the cause with the most bodies (a tie is
"mixed"), and writes the paragraph that states it, including when it contradicts the "parent still
pending" reading of the seed report. Stdlib only.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import fields
from enum import Enum

from ordersync.forensics.records import ErrorBody
from ordersync.forensics.report import Cause, CauseShare, Evidence, Verdict

SHORT_SELL_TEXT = "cannot open a short sell"
WASH_TRADE_TEXT = "potential wash trade"


class BodyClass(Enum):
    NO_POSITION = "no_position"
    SHORT_SELL = "short_sell_refusals"
    WASH_TRADE = "wash_trade_refusals"
    ALL_RESERVED = "all_reserved"
    PARTLY_RESERVED = "partly_reserved"
    NO_QTY_FIELDS = "no_qty_fields"


class Relation(Enum):
    LISTED = "related_to_listed"
    OTHER = "related_to_other"
    ABSENT = "related_absent"


def classify(body: ErrorBody) -> BodyClass:
    """Say what one `40310000` body shows about the position when the sell was refused."""
    if SHORT_SELL_TEXT in body.message:
        return BodyClass.SHORT_SELL
    if WASH_TRADE_TEXT in body.message:
        return BodyClass.WASH_TRADE
    existing, held = body.existing_qty, body.held_for_orders
    if existing is None or (existing > 0 and held is None):
        return BodyClass.NO_QTY_FIELDS
    if existing <= 0:
        return BodyClass.NO_POSITION
    return BodyClass.ALL_RESERVED if held is not None and held >= existing else BodyClass.PARTLY_RESERVED


_FIELDS = tuple(f.name for f in fields(Evidence))
_INDEX = {name: i for i, name in enumerate(_FIELDS)}


class EvidenceTally:
    """Mutable counts behind an `Evidence`, kept in a compact array (one per parent order)."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts = array("q", bytes(8 * len(_FIELDS)))

    @classmethod
    def empty(cls) -> EvidenceTally:
        return cls()

    def add(self, body_class: BodyClass, relation: Relation, n: int) -> None:
        counts = self._counts
        for name in ("bodies", body_class.value, relation.value):
            counts[_INDEX[name]] += n

    def merge(self, other: Evidence) -> None:
        for i, name in enumerate(_FIELDS):
            self._counts[i] += getattr(other, name)

    def freeze(self) -> Evidence:
        return Evidence(*self._counts)


def decide(evidence: Evidence) -> Cause:
    """Pick the cause most bodies support; a tie between the top two is `MIXED`."""
    if evidence.bodies == 0:
        return Cause.NONE
    ranked = sorted(
        (
            (evidence.sell_before_fill, Cause.SELL_BEFORE_FILL),
            (evidence.all_reserved, Cause.RESERVED_BY_OPEN_ORDER),
            (evidence.partly_reserved, Cause.OVERSIZED_SELL),
        ),
        key=lambda pair: pair[0],
        reverse=True,
    )
    (top, cause), (second, _) = ranked[0], ranked[1]
    if top == 0:
        return Cause.UNDETERMINED
    return Cause.MIXED if top == second else cause


CAUSE_LABELS: dict[Cause, str] = {
    Cause.SELL_BEFORE_FILL: "sell came before the buy filled",
    Cause.RESERVED_BY_OPEN_ORDER: "shares existed and were all reserved by another open order",
    Cause.OVERSIZED_SELL: "sell asked for more than the free shares",
    Cause.MIXED: "mixed: both causes present",
    Cause.UNDETERMINED: "undetermined: bodies carry no quantity fields",
    Cause.NONE: "no 40310000 refusals",
}


def overall_verdict(evidence: Evidence, *, listed_sides_unknown: bool) -> Verdict:
    """Write the verdict paragraph for all `40310000` bodies together.

    `listed_sides_unknown` is true when the orders named by `related_orders` have no side in the log (the
    seed's bare submission lines), which lets the text say what the order must have been.
    """
    cause = decide(evidence)
    contradicts = cause is Cause.RESERVED_BY_OPEN_ORDER
    parts = [_lead(cause, evidence), _related(evidence, cause, listed_sides_unknown=listed_sides_unknown)]
    return Verdict(
        cause=cause,
        headline=CAUSE_LABELS[cause],
        text=" ".join(p for p in parts if p),
        contradicts_pending_reading=contradicts,
    )


def _lead(cause: Cause, e: Evidence) -> str:
    n, before, reserved, partly = e.bodies, e.sell_before_fill, e.all_reserved, e.partly_reserved
    if cause is Cause.NONE:
        return "No `40310000` refusals were found: no premature or competing child orders in this input."
    if cause is Cause.UNDETERMINED:
        return f"None of the {n} `40310000` bodies carries `existing_qty`/`held_for_orders`: undecidable."
    if cause is Cause.MIXED:
        return (
            f"**The evidence is mixed.** {before} of {n} `40310000` refusals show the sell came before the "
            f"buy filled and {reserved} show the shares existed and were all reserved by another open order "
            f"({partly} asked for more than the free part of the position): both mistakes are present."
        )
    return _single_cause(cause, n, before, reserved, partly)


def _single_cause(cause: Cause, n: int, before: int, reserved: int, partly: int) -> str:
    before_forms = (
        f'`existing_qty` 0, "{SHORT_SELL_TEXT} while a long buy order is open", or a wash trade against '
        f"the open buy"
    )
    if cause is Cause.RESERVED_BY_OPEN_ORDER:
        return (
            f"**The evidence supports: the shares existed and were all reserved by another open order.** "
            f"In {reserved} of {n} `40310000` refusals the body shows `existing_qty` > 0 with "
            f"`held_for_orders` = `existing_qty`: the position was there and every share was already held "
            f"by the open order named in `related_orders` (an earlier or competing child, such as a "
            f"take-profit beside a stop-loss or a retried take-profit). Only {before} show the parent not "
            f'yet filled ({before_forms}). **This contradicts the "parent still pending" reading** (the '
            f"hand-written seed report's root cause): a pending buy leaves `existing_qty` at 0 and is "
            f"refused as a short sell, not with every share held for orders."
        )
    if cause is Cause.SELL_BEFORE_FILL:
        return (
            f"**The evidence supports: the sell came before the buy filled.** In {before} of {n} `40310000` "
            f"refusals the parent buy was still open ({before_forms}), so the child had nothing to sell. "
            f"{reserved} show shares that existed but were all reserved by another open order, and "
            f"{partly} a sell larger than the free shares."
        )
    return (
        f"**The evidence supports: the sell asked for more than the free shares.** In {partly} of {n} "
        f"`40310000` refusals the position existed but fewer shares were free than the sell asked for "
        f"(`available` < requested with `held_for_orders` < `existing_qty`): the child was sized beyond "
        f"the filled quantity, typically the whole order while the parent had filled in part."
    )


def _related(e: Evidence, cause: Cause, *, listed_sides_unknown: bool) -> str:
    sentences = []
    if e.related_to_listed and cause is Cause.RESERVED_BY_OPEN_ORDER and listed_sides_unknown:
        sentences.append(
            f"In {e.related_to_listed} refusals `related_orders` names the very order listed as the parent "
            f"in the table; since `held_for_orders` counts shares reserved by open sell orders, that order "
            f"was an open sell holding the shares (most likely the first child), not a pending buy."
        )
    if e.related_to_other:
        sentences.append(
            f"In {e.related_to_other} refusals `related_orders` names another order than the parent: a "
            f"sibling child already holding the shares."
        )
    if e.related_absent:
        sentences.append(f"{e.related_absent} bodies name no related order.")
    return " ".join(sentences)


def parents_verdict(
    causes: Sequence[CauseShare], evidence: Evidence, *, listed_sides_unknown: bool
) -> Verdict:
    """The overall cause from the distribution of causes across parents, never a vote over bodies.

    One cause for every parent: that cause, argued from the bodies (`overall_verdict`). Several: "mixed",
    and the headline names each cause with its share of the parents, so a 50/50 split reads as two causes.
    """
    decided = [c for c in causes if c.cause not in (Cause.NONE, Cause.UNDETERMINED)]
    if len(decided) <= 1:
        verdict = overall_verdict(evidence, listed_sides_unknown=listed_sides_unknown)
        if not decided or decided[0].cause is verdict.cause:
            return verdict
        only = decided[0].cause
        return Verdict(
            cause=only,
            headline=CAUSE_LABELS[only],
            text=f"Every parent whose bodies decide it shows: {CAUSE_LABELS[only]}. {verdict.text}",
            contradicts_pending_reading=only is Cause.RESERVED_BY_OPEN_ORDER,
        )
    total = sum(c.parents for c in causes)
    shares = "; ".join(f"{CAUSE_LABELS[c.cause]} ({c.parents} of {total} parents)" for c in decided)
    lead = (
        f"**The causes differ between parents**: {shares}. Each parent's cause is decided from its own "
        f"bodies; they are not pooled into one vote."
    )
    reserved = next((c.parents for c in decided if c.cause is Cause.RESERVED_BY_OPEN_ORDER), 0)
    contra = (
        f" For the {reserved} parent(s) whose shares were all reserved by another open order, this "
        f'contradicts the "parent still pending" reading.'
        if reserved
        else ""
    )
    related = _related(
        evidence,
        Cause.RESERVED_BY_OPEN_ORDER if reserved else Cause.MIXED,
        listed_sides_unknown=listed_sides_unknown,
    )
    return Verdict(
        cause=Cause.MIXED,
        headline=f"mixed across parents: {shares}",
        text=" ".join(x for x in (lead + contra, related) if x),
        contradicts_pending_reading=bool(reserved),
    )
