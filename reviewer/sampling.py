"""Estimates from a sample, and reviewer agreement from second reviews.

A sample is a stratified simple random sample of a batch's pending events (not decided
by a person): per category, or per confidence bucket, ``per_stratum`` events each. The
draw is reproducible: it depends only on the stored seed and the events that were
pending. Reviewing the sample (in review mode, ``?sample=<id>``) estimates the precision
of the events each stratum was drawn from, with a 95 % Wilson interval, and how many
more reviews would narrow it to ±5 points. It is an estimate, and the page says so.

A second review assigns a random share of events a person decided to another reviewer,
who judges them blind (the first decision is not shown). Agreement and Cohen's κ per
pair of reviewers and per category come from the two decisions.
"""

from __future__ import annotations

import math
import random
import secrets
from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from reviewer import quality
from reviewer.models import Approval, Batch, Event, Sample, SampleEvent, SecondReview, SecondReviewItem

MARGIN = 0.05  # "±5 points"
DECIDED = (Approval.APPROVED, Approval.REJECTED, Approval.INVALID)


# --- Drawing ----------------------------------------------------------------------------------------


def draw(population: dict[str, list[int]], per_stratum: int, seed: int) -> dict[str, list[int]]:
    """The sample of each stratum: ``per_stratum`` ids at random (all of a smaller stratum), reproducibly.

    Only the seed, the stratum's name and its ids (sorted) decide the draw.
    """
    chosen = {}
    for stratum, ids in sorted(population.items()):
        ordered = sorted(ids)
        rng = random.Random(f"{seed}:{stratum}")
        chosen[stratum] = sorted(rng.sample(ordered, min(per_stratum, len(ordered))))
    return chosen


def pending_population(batch: Batch, by: str) -> dict[str, list[int]]:
    """The batch's events nobody decided yet, by stratum (a category, or a confidence bucket)."""
    key = "category" if by == "category" else "bucket"
    events = Event.objects.filter(batch=batch, decided_at__isnull=True)
    if by == "confidence":
        events = events.annotate(bucket=quality.confidence_bucket())
    population: dict[str, list[int]] = defaultdict(list)
    for pk, value in events.values_list("pk", key):
        population[value or "(none)"].append(pk)
    return dict(population)


def create_sample(batch: Batch, by: str, per_stratum: int, user, seed: int | None = None) -> Sample:
    population = pending_population(batch, by)
    seed = secrets.randbelow(2**31) if seed is None else seed
    chosen = draw(population, per_stratum, seed)
    with transaction.atomic():
        sample = Sample.objects.create(batch=batch, by=by, per_stratum=per_stratum, seed=seed, created_by=user,
                                       populations={name: len(ids) for name, ids in population.items()})  # fmt: skip
        SampleEvent.objects.bulk_create(
            [SampleEvent(sample=sample, event_id=pk, stratum=name) for name, ids in chosen.items() for pk in ids]
        )
    return sample


# --- Estimating ---------------------------------------------------------------------------------------


@dataclass
class Stratum:
    name: str
    population: int  # pending events it was drawn from
    sampled: int
    approved: int  # of the sampled events, as decided by a person since
    rejected: int
    invalid: int

    @property
    def judged(self) -> int:
        return self.approved + self.rejected

    @property
    def reviewed(self) -> int:
        return self.judged + self.invalid

    @property
    def precision(self) -> float | None:
        return self.approved / self.judged if self.judged else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return quality.wilson(self.approved, self.judged)

    @property
    def more_needed(self) -> int:
        """More approve-or-reject decisions for an interval of about ±5 points (0.5 is assumed with none yet)."""
        return max(0, reviews_for_margin(self.precision, self.population) - self.judged)


def reviews_for_margin(precision: float | None, population: int, margin: float = MARGIN) -> int:
    """Approve-or-reject decisions for a 95 % interval of about ±margin (at most the stratum's size).

    No finite-population correction: the interval shown is the plain Wilson one, and the
    plan must match what the page will show.
    """
    p = 0.5 if precision is None else min(max(precision, 0.05), 0.95)  # never plan on a variance of 0
    needed = math.ceil(quality.Z95**2 * p * (1 - p) / margin**2)
    return min(population, needed) if population else needed


def estimate(sample: Sample) -> list[Stratum]:
    """Each stratum's estimate from the sample's events as a person decided them so far."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = sample.members.values_list("stratum", "event__approval", "event__decided_at")
    for stratum, approval, decided_at in rows:
        counts[stratum]["sampled"] += 1
        if decided_at is not None and approval in DECIDED:
            counts[stratum][approval] += 1
    return [
        Stratum(name, population, counts[name]["sampled"], counts[name][Approval.APPROVED],
                counts[name][Approval.REJECTED], counts[name][Approval.INVALID])
        for name, population in sorted(sample.populations.items(), key=lambda item: (-item[1], item[0]))
    ]  # fmt: skip


def combined(strata: list[Stratum]) -> tuple[float, tuple[float, float]] | None:
    """The stratified estimate: the strata's precisions, each weighted by how many of its events can be judged.

    A stratum's weight is its pending events times the share of its reviewed sample that
    was approved or rejected (not invalid): precision is about those. None until every
    sampled stratum has an approve or a reject, since leaving one out would claim a number
    for events nobody looked at. The interval is the normal one on the weighted variance,
    each stratum's variance taken with the Agresti–Coull adjustment (2 successes in 4 more),
    so a stratum at 0 % or 100 % still counts as uncertain.
    """
    sampled = [stratum for stratum in strata if stratum.sampled]
    if not sampled or any(not stratum.judged for stratum in sampled):
        return None
    weights = [stratum.population * stratum.judged / stratum.reviewed for stratum in sampled]
    total = sum(weights)
    point, variance = 0.0, 0.0
    for stratum, weight in zip(sampled, weights, strict=True):
        share = weight / total
        adjusted = (stratum.approved + 2) / (stratum.judged + 4)
        point += share * stratum.precision
        variance += share**2 * adjusted * (1 - adjusted) / (stratum.judged + 4)
    half = quality.Z95 * math.sqrt(variance)
    return point, (max(0.0, point - half), min(1.0, point + half))


# --- Second reviews and agreement -----------------------------------------------------------------


def create_second_review(batch: Batch, reviewer, share: float, user, seed: int | None = None) -> SecondReview:
    """Assign ``share`` of the events a person (other than ``reviewer``) decided to ``reviewer``, in random order."""
    seed = secrets.randbelow(2**31) if seed is None else seed
    decided = list(
        Event.objects.filter(batch=batch, decided_at__isnull=False, approval__in=DECIDED)
        .exclude(decided_by=reviewer)
        .order_by("pk")
        .values_list("pk", "decided_by_id", "approval")
    )
    rng = random.Random(seed)
    count = min(len(decided), max(1, round(share * len(decided)))) if decided else 0
    chosen = rng.sample(decided, count)
    with transaction.atomic():
        second = SecondReview.objects.create(batch=batch, reviewer=reviewer, share=share, seed=seed, created_by=user)
        SecondReviewItem.objects.bulk_create(
            [SecondReviewItem(second_review=second, event_id=pk, first_user_id=first_user, first_approval=approval,
                              position=index) for index, (pk, first_user, approval) in enumerate(chosen)]
        )  # fmt: skip
    return second


def next_item(second: SecondReview) -> SecondReviewItem | None:
    return second.items.filter(second_approval="").select_related("event__item__batch").first()


def record(item: SecondReviewItem, decision: str) -> None:
    """The second reviewer's decision; the event itself and its history are left as they are."""
    if decision not in DECIDED:
        raise ValueError(f"Unknown decision {decision!r}: use approved, rejected or invalid.")
    # Once only: a second look at one's own answer, after seeing the results, would not be blind.
    SecondReviewItem.objects.filter(pk=item.pk, second_approval="").update(second_approval=decision,
                                                                           decided_at=timezone.now())  # fmt: skip


@dataclass
class Agreement:
    label: str  # "alice → bob" or a category
    pairs: list[tuple[str, str]]  # (first, second) decisions

    @property
    def count(self) -> int:
        return len(self.pairs)

    @property
    def agreed(self) -> int:
        return sum(1 for first, second in self.pairs if first == second)

    @property
    def rate(self) -> float | None:
        return self.agreed / self.count if self.count else None

    @property
    def kappa(self) -> float | None:
        return cohens_kappa(self.pairs)


def cohens_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's κ of two raters' labels: (observed − chance agreement) / (1 − chance). None when undefined."""
    n = len(pairs)
    if not n:
        return None
    observed = sum(1 for first, second in pairs if first == second) / n
    labels = {label for pair in pairs for label in pair}
    chance = sum(
        (sum(1 for first, _ in pairs if first == label) / n) * (sum(1 for _, second in pairs if second == label) / n)
        for label in labels
    )
    if chance >= 1:
        return None  # both gave one and the same label every time: κ is not defined
    return (observed - chance) / (1 - chance)


def agreements(items) -> tuple[list[Agreement], list[Agreement]]:
    """Agreement per pair of reviewers (first → second) and per category, over decided items."""
    by_pair: dict[str, list] = defaultdict(list)
    by_category: dict[str, list] = defaultdict(list)
    for item in items:
        pair = (item.first_approval, item.second_approval)
        first = item.first_user.get_username() if item.first_user else "(deleted user)"
        by_pair[f"{first} → {item.second_review.reviewer.get_username()}"].append(pair)
        by_category[item.event.category or "(none)"].append(pair)
    return (
        [Agreement(label, pairs) for label, pairs in sorted(by_pair.items())],
        [Agreement(label, pairs) for label, pairs in sorted(by_category.items())],
    )


def decided_items(second_reviews):
    return (
        SecondReviewItem.objects.filter(second_review__in=second_reviews)
        .exclude(second_approval="")
        .select_related("first_user", "second_review__reviewer", "event__item")
    )


def disagreements(items):
    return [item for item in items if item.first_approval != item.second_approval]
