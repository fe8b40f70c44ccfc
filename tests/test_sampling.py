"""Estimates from a sample (reproducible draws, honest intervals) and blind second reviews (agreement, κ)."""

from __future__ import annotations

import json
import math
import re

import pytest
from django.contrib.auth.models import Group, User

from reviewer import review, sampling
from reviewer.models import Approval, Decision, Event, Sample, SecondReview
from tests.factories import import_bytes, nomadic_analysis, nomadic_event, nomadic_result

pytestmark = pytest.mark.django_db

# A synthetic batch: per category, how many events and what share of them is truly right.
TRUTH = {"jaywalking": (120, 0.8), "near_miss": (90, 0.5), "red_light": (60, 0.95)}


@pytest.fixture
def synthetic(staff):
    """The batch, and the ground truth of each event: approved (the model was right) or rejected."""
    events, truth = [], {}
    for category, (count, precision) in TRUTH.items():
        right = round(count * precision)
        for n in range(count):
            label = f"{category}-{n}"
            events.append(nomadic_event(category=category, label=label, t_start=f"{n // 60:02d}:{n % 60:02d}",
                                        t_end=f"{n // 60:02d}:{n % 60:02d}"))  # fmt: skip
            truth[label] = Approval.APPROVED if n < right else Approval.REJECTED
    results = [nomadic_result(f"v{n}", events[n::10]) for n in range(10)]
    run = import_bytes(json.dumps(nomadic_analysis("b-sample", results)).encode(), "s.json")
    assert run.outcome == "succeeded", run.error
    return run.batch, truth


def test_a_draw_is_reproducible_and_per_stratum():
    population = {"a": list(range(100)), "b": list(range(100, 103))}
    first = sampling.draw(population, 10, seed=7)
    assert first == sampling.draw({"b": [102, 100, 101], "a": list(reversed(range(100)))}, 10, seed=7)  # order-free
    assert first != sampling.draw(population, 10, seed=8)
    assert len(first["a"]) == 10 and set(first["a"]) <= set(population["a"])
    assert first["b"] == [100, 101, 102]  # a stratum smaller than the sample: all of it


def test_the_estimate_covers_the_truth_in_at_least_90_of_200_draws(synthetic):
    """Acceptance: over 200 seeded draws, each stratum's 95 % interval contains its true precision ≥ 90 % of the time."""
    batch, truth = synthetic
    label_of = dict(Event.objects.filter(batch=batch).values_list("pk", "label"))
    population = sampling.pending_population(batch, "category")
    assert {name: len(ids) for name, ids in population.items()} == {name: n for name, (n, _) in TRUTH.items()}
    covered = {name: 0 for name in TRUTH}
    combined_covered = 0
    overall_truth = sum(n * p for n, p in TRUTH.values()) / sum(n for n, _ in TRUTH.values())
    for seed in range(200):
        strata = []
        for name, ids in sampling.draw(population, 25, seed).items():
            approved = sum(1 for pk in ids if truth[label_of[pk]] == Approval.APPROVED)
            stratum = sampling.Stratum(name, len(population[name]), len(ids), approved, len(ids) - approved, 0)
            low, high = stratum.interval
            covered[name] += low <= TRUTH[name][1] <= high
            strata.append(stratum)
        _, (low, high) = sampling.combined(strata)
        combined_covered += low <= overall_truth <= high
    print({name: f"{count / 200:.1%}" for name, count in covered.items()}, f"combined {combined_covered / 200:.1%}")
    assert all(count >= 180 for count in covered.values()), covered
    assert combined_covered >= 180


def test_a_sample_reviewed_in_review_mode_gives_the_estimate(client, synthetic, staff):
    batch, truth = synthetic
    client.force_login(staff)
    response = client.post(f"/batches/{batch.pk}/samples", {"by": "category", "per_stratum": 8})
    sample = Sample.objects.get()
    assert response.url == f"/samples/{sample.pk}/"
    assert sample.populations == {name: n for name, (n, _) in TRUTH.items()}
    members = list(sample.members.select_related("event"))
    assert len(members) == 24 and {m.stratum for m in members} == set(TRUTH)
    # the same seed over the same pending events: the same sample
    again = sampling.create_sample(batch, "category", 8, staff, seed=sample.seed)
    assert sorted(again.members.values_list("event_id", flat=True)) == sorted(m.event_id for m in members)
    # review mode under ?sample= shows exactly the sample's events
    page = client.get(f"/batches/{batch.pk}/?sample={sample.pk}").content.decode()
    assert sorted(int(pk) for pk in re.findall(r'<tr class="event" id="event-(\d+)"', page)) == sorted(
        m.event_id for m in members)  # fmt: skip
    assert client.get(f"/batches/{batch.pk}/review?sample={sample.pk}").status_code == 200
    for member in members:
        review.decide(member.event, truth[member.event.label], staff)
    strata = {stratum.name: stratum for stratum in sampling.estimate(sample)}
    for name in TRUTH:
        chosen = [m for m in members if m.stratum == name]
        approved = sum(1 for m in chosen if truth[m.event.label] == Approval.APPROVED)
        assert (strata[name].approved, strata[name].rejected) == (approved, len(chosen) - approved)
    detail = client.get(f"/samples/{sample.pk}/").content.decode()
    assert "This is an estimate." in detail and f"seed {sample.seed}" in detail
    point, interval = sampling.combined(list(strata.values()))
    assert f'id="combined-estimate">{point * 100:.0f} %<' in detail


def test_a_sample_of_another_batch_is_a_clear_400(client, synthetic, staff):
    batch, _ = synthetic
    other = import_bytes(json.dumps(nomadic_analysis("b-other", [nomadic_result("x", [nomadic_event()])])).encode(),
                         "o.json").batch  # fmt: skip
    sample = sampling.create_sample(other, "category", 5, staff)
    client.force_login(staff)
    response = client.get(f"/batches/{batch.pk}/?sample={sample.pk}")
    assert response.status_code == 400
    assert f"there is no sample {sample.pk} of this batch" in response.content.decode()


@pytest.mark.parametrize(("precision", "population", "needed"), [(None, 10**6, 385), (None, 100, 100), (0.9, 10**6, 139),
                                                                 (1.0, 10**6, 73), (0.5, 10, 10)])  # fmt: skip
def test_more_reviews_for_five_points(precision, population, needed):
    assert sampling.reviews_for_margin(precision, population) == needed


def test_viewers_cannot_draw_or_assign(client, synthetic, viewer):
    batch, _ = synthetic
    client.force_login(viewer)
    assert client.post(f"/batches/{batch.pk}/samples", {"by": "category", "per_stratum": 5}).status_code == 403
    assert client.post(f"/batches/{batch.pk}/second-reviews", {"reviewer": viewer.pk, "share": 10}).status_code == 403
    assert not Sample.objects.exists() and not SecondReview.objects.exists()


# --- Second reviews ----------------------------------------------------------------------------------


def kappa_by_hand(pairs):
    """Cohen's κ from the confusion table, written out: (p_o − p_e) / (1 − p_e)."""
    labels = sorted({label for pair in pairs for label in pair})
    table = {(a, b): sum(1 for pair in pairs if pair == (a, b)) for a in labels for b in labels}
    n = len(pairs)
    p_o = sum(table[(a, a)] for a in labels) / n
    p_e = sum(sum(table[(a, b)] for b in labels) * sum(table[(b, a)] for b in labels) for a in labels) / n**2
    return (p_o - p_e) / (1 - p_e)


def test_cohens_kappa():
    # 20 yes-yes, 5 yes-no, 10 no-yes, 15 no-no: p_o 0.7, p_e 0.5, κ 0.4 (the textbook example)
    pairs = [("a", "a")] * 20 + [("a", "r")] * 5 + [("r", "a")] * 10 + [("r", "r")] * 15
    assert sampling.cohens_kappa(pairs) == pytest.approx(0.4) == pytest.approx(kappa_by_hand(pairs))
    three = [("a", "a"), ("a", "r"), ("r", "r"), ("i", "i"), ("i", "a"), ("r", "r"), ("a", "a")]
    assert sampling.cohens_kappa(three) == pytest.approx(kappa_by_hand(three))
    assert sampling.cohens_kappa([("a", "a")] * 4) is None  # one label only: undefined
    assert sampling.cohens_kappa([]) is None


def test_a_second_review_is_blind_changes_nothing_and_measures_agreement(client, synthetic, staff):
    batch, truth = synthetic
    second_reviewer = User.objects.create_user("bea", password="pw-bea")
    second_reviewer.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    decided = list(Event.objects.filter(batch=batch).order_by("pk")[:40])
    for event in decided:
        review.decide(event, truth[event.label], staff, note="first look: SECRET-NOTE")
    client.force_login(staff)
    client.post(f"/batches/{batch.pk}/second-reviews", {"reviewer": second_reviewer.pk, "share": 25})
    second = SecondReview.objects.get()
    items = list(second.items.select_related("event"))
    assert len(items) == 10 and all(item.first_user == staff for item in items)
    assert client.get(f"/second-reviews/{second.pk}/review").status_code == 403  # only the assignee judges

    client.force_login(second_reviewer)
    decisions_before = Decision.objects.count()
    answers = []
    for n in range(10):
        page = client.get(f"/second-reviews/{second.pk}/review").content.decode()
        event = Event.objects.get(pk=int(re.search(r'blind-card" data-event="(\d+)"', page).group(1)))
        for secret in ("SECRET-NOTE", "alice", "approval-approved", "approval-rejected", "timeline"):
            assert secret not in page, secret  # nothing tells the first decision, or who made it
        item = next(item for item in items if item.event_id == event.pk)
        answer = item.first_approval if n < 7 else (Approval.INVALID if n == 7 else Approval.APPROVED)
        answers.append((item.first_approval, answer, event.category))
        client.post(f"/second-reviews/{second.pk}/items/{item.pk}", {"decision": answer})
    done = client.get(f"/second-reviews/{second.pk}/review")
    assert done.status_code == 302 and done.url == f"/second-reviews/{second.pk}/"
    assert Decision.objects.count() == decisions_before  # the events and their history are untouched
    assert all(Event.objects.get(pk=item.event_id).approval == item.first_approval for item in items)

    pairs = [(first, second_answer) for first, second_answer, _ in answers]
    results = client.get(f"/second-reviews/{second.pk}/").content.decode()
    agreed = sum(1 for first, second_answer in pairs if first == second_answer)
    assert f'id="agreement-rate">{agreed * 10} %<' in results
    kappa = kappa_by_hand(pairs)
    assert f'id="kappa">{kappa:.2f}<' in results
    _, by_category = sampling.agreements(sampling.decided_items([second]))
    for row in by_category:
        mine = [(a, b) for a, b, category in answers if category == row.label]
        assert row.count == len(mine) and row.agreed == sum(1 for a, b in mine if a == b)
    assert results.count("Look again") == len(pairs) - agreed
    assert not math.isnan(kappa)


def test_no_combined_estimate_until_every_sampled_stratum_has_decisions_and_invalid_ones_weigh_less():
    unseen = sampling.Stratum("big", 9000, 20, 0, 0, 0)
    seen = sampling.Stratum("small", 100, 10, 10, 0, 0)
    assert sampling.combined([unseen, seen]) is None  # not "100 %" for 9,100 events from 100 of them
    mostly_invalid = sampling.Stratum("a", 1000, 20, 2, 0, 18)  # 2 of 20 judgeable: stands for ~100 events
    judged = sampling.Stratum("b", 1000, 20, 4, 16, 0)
    point, _ = sampling.combined([mostly_invalid, judged])
    assert point == pytest.approx((100 * 1.0 + 1000 * 0.2) / 1100)


def test_a_second_answer_cannot_be_changed_and_results_wait_for_the_end(client, synthetic, staff):
    batch, truth = synthetic
    bea = User.objects.create_user("bea", password="pw-bea")
    for event in Event.objects.filter(batch=batch).order_by("pk")[:8]:
        review.decide(event, truth[event.label], staff)
    second = sampling.create_second_review(batch, bea, 0.5, staff, seed=3)
    first, *rest = list(second.items.all())
    client.force_login(bea)
    client.post(f"/second-reviews/{second.pk}/items/{first.pk}", {"decision": "invalid"})
    page = client.get(f"/second-reviews/{second.pk}/").content.decode()
    assert "The results come when you are done" in page and "Look again" not in page
    client.post(f"/second-reviews/{second.pk}/items/{first.pk}", {"decision": "approved"})  # a second try
    first.refresh_from_db()
    assert first.second_approval == "invalid"
    client.force_login(staff)
    assert "The results come when you are done" not in client.get(f"/second-reviews/{second.pk}/").content.decode()
