"""``evaluate``: the whole gate for one Promotion, as a pure function of its inputs and the time.

Order of judgement (every gate is reported, none short-circuits another):

1. Requester and policy presence: no verified requester stamp (RequesterUnknown) or no matching
   GatePolicy (NoMatchingPolicy) holds the Promotion in Pending: fail closed.
2. Per policy (sorted by name; all must pass, so the strictest wins): CEL rules (a false rule, or
   one that fails to compile or evaluate, is blocking: Pending); the emergency path or the risk
   threshold that sets the approval counts; change windows and the wait timer (skipped on the
   emergency path); the approval rules.
3. Source soak (skipped on the emergency path).
4. Phase: Rejected if any eligible approver's Reject counts (Rejects never expire: a rejection
   stands for the spec it names); else Pending if a blocking gate failed; else Approved when every
   gate passed; else AwaitingApproval (approvals or a time gate outstanding).

Approvals count only when stamped and verified, bound to the current spec hash, from an approver
with the RBAC permission (SAR), not the requester or the declared author (separation of duties, whatever
a policy stored before ``forbidSelfApproval: false`` was refused says),
younger than maxAge, and assigned to a rule (distinct approvers, one rule each, maximum matching).
Each policy assigns approvers independently: one person may satisfy a rule in each of two policies.
"""

from __future__ import annotations

import collections
import datetime
from collections.abc import Hashable, Iterable, Sequence

from lockgate.api import approval, durations, gatepolicy, phases, promotion
from lockgate.gates import approvals as approvals_mod
from lockgate.gates import celrules, decision, facts, spechash, windows
from lockgate.gates import policies as policies_mod

Judgements = dict[str, list[approvals_mod.Judgement]]

# Decisions memoised per exact input (resourceVersions of the Promotion, its Approvals and the policies,
# plus the facts), each valid for at most CACHE_SECONDS of ``now`` and never past its ``next_look_at``:
# rules may read ``now`` and a change window may close without a look time, so a cached Decision is
# never older than an evaluation that took that long would be.
CACHE_SECONDS = 1.0
CACHE_SIZE = 4096
_cache: collections.OrderedDict[Hashable, tuple[datetime.datetime, decision.Decision]] = collections.OrderedDict()


def _spec_hash(obj: promotion.Promotion) -> str:
    """Memoised by (uid, resourceVersion), the identity the decisions are memoised by: a new Approval does not
    change the Promotion, so the decision it brings need not serialise the spec again."""
    uid, version = obj.metadata.uid, obj.metadata.resource_version
    identity = ("version", uid, version) if uid and version else None
    return spechash.remembered(identity, lambda: spechash.of_promotion(obj))


def _cache_key(
    obj: promotion.Promotion,
    items: Sequence[approval.Approval],
    policies: Sequence[gatepolicy.GatePolicy],
    known: facts.Facts,
) -> Hashable | None:
    """The identity of the inputs, or None when an object has no resourceVersion (not from the API)."""
    versions: list[tuple[str | None, str, str | None]] = [
        (o.metadata.namespace, o.metadata.name, o.metadata.resource_version) for o in (obj, *items, *policies)
    ]
    if any(v[2] is None for v in versions):
        return None
    return (
        obj.metadata.uid,
        tuple(versions[:1]),
        tuple(sorted(versions[1 : 1 + len(items)])),
        tuple(sorted(versions[1 + len(items) :])),
        tuple(sorted(known.can_approve.items())),
        known.verified_approvals,
        known.requester,
        known.source,
        tuple(sorted(known.namespace_labels.items())),
    )


def _gate(
    name: str, kind: str, passed: bool, reason: str, message: str, blocking: bool = False
) -> decision.GateVerdict:
    return decision.GateVerdict(name, kind, passed, reason, message, blocking and not passed)


def _fmt(at: datetime.datetime) -> str:
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def evaluate(
    obj: promotion.Promotion,
    items: Iterable[approval.Approval],
    policies: Iterable[gatepolicy.GatePolicy],
    known: facts.Facts,
    now: datetime.datetime,
) -> decision.Decision:
    """Judge a Promotion. ``items`` may include Approvals of other Promotions (ignored); ``policies``
    may include policies that do not select the namespace (filtered by ``known.namespace_labels``)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    items, policies = tuple(items), tuple(policies)
    key = _cache_key(obj, items, policies, known)
    if key is not None:
        hit = _cache.get(key)
        if hit is not None:
            at, made = hit
            if at <= now < at + datetime.timedelta(seconds=CACHE_SECONDS) and (
                made.next_look_at is None or now < made.next_look_at
            ):
                return made
    made = _evaluate(obj, items, policies, known, now)
    if key is not None and not made.emergency:  # an emergency's retro review is due relative to now
        _cache[key] = (now, made)
        _cache.move_to_end(key)
        expired = now - datetime.timedelta(seconds=CACHE_SECONDS)
        while _cache and (len(_cache) > CACHE_SIZE or next(iter(_cache.values()))[0] < expired):
            _cache.popitem(last=False)  # oldest first: past its second it can never be used again
    return made


def _evaluate(
    obj: promotion.Promotion,
    items: Sequence[approval.Approval],
    policies: Sequence[gatepolicy.GatePolicy],
    known: facts.Facts,
    now: datetime.datetime,
) -> decision.Decision:
    spec_hash = _spec_hash(obj)
    name, namespace = obj.metadata.name, obj.metadata.namespace or ""
    mine = sorted(
        (
            a
            for a in items
            if a.spec.promotion == name and a.metadata.namespace in (None, obj.metadata.namespace)
        ),
        key=lambda a: (a.spec.stamp.at if a.spec.stamp else now, a.metadata.name),
    )
    change_items = [a for a in mine if a.spec.purpose == "Change"]
    retro_items = [a for a in mine if a.spec.purpose == "RetroReview"]
    applied = policies_mod.matching(policies, known.namespace_labels)
    requester = known.requester
    status = obj.status
    same_cycle = status.spec_hash == spec_hash
    cycle_start = status.ready_for_approval_at if same_cycle and status.ready_for_approval_at else now

    gates: list[decision.GateVerdict] = []
    looks: list[datetime.datetime] = []
    judged: Judgements = {a.metadata.name: [] for a in change_items}

    if requester is None:
        gates.append(
            _gate(
                "requester",
                "Requester",
                False,
                "RequesterUnknown",
                "the Promotion has no verified requester stamp (written around the admission webhook?); "
                "re-apply it through the API server with the Lockgate webhook running",
                blocking=True,
            )
        )
    if not applied:
        gates.append(
            _gate(
                "policy",
                "Policy",
                False,
                "NoMatchingPolicy",
                f"no GatePolicy selects namespace {namespace!r}; create one or fix its namespaceSelector",
                blocking=True,
            )
        )

    authors = approvals_mod.author_names(obj.spec.change.author if obj.spec.change else None)

    def conflicted(approver: str) -> approvals_mod.Judgement | None:
        probe = approvals_mod.Candidate(approver, approver, frozenset(), "Approve", now)
        return approvals_mod.separation_of_duties(probe, requester, authors)

    candidates, refused = approvals_mod.prejudge(
        change_items, spec_hash, known.verified_approvals, known.can_approve, conflicted
    )
    latest: dict[str, approvals_mod.Candidate] = {}
    for c in candidates:
        if c.decision == "Approve":
            latest[c.approver] = c
    duplicates = {c.name for c in candidates if c.decision == "Approve" and latest[c.approver].name != c.name}

    needs_scope = any(p.spec.rules or p.spec.risk_thresholds for p in applied)
    scope = celrules.scope(obj, spec_hash, requester) if needs_scope else None
    source_view = celrules.source_view(known.source)

    wants_emergency = obj.spec.emergency is not None
    emergency_used = False
    retro_within: list[datetime.timedelta] = []
    retro_needs: list[approvals_mod.RuleNeed] = []
    emergency_approvers: set[str] = set()
    rejected_by: list[approvals_mod.Candidate] = []
    required = counted = 0
    explicit_zero = False
    waiting: list[str] = []
    filled_msgs: list[str] = []

    for policy in applied:
        pname, spec = policy.metadata.name, policy.spec
        expressions = tuple(r.expression for r in spec.rules) + tuple(t.when for t in spec.risk_thresholds)
        results = scope.run_all(expressions, now, source_view) if scope is not None and expressions else []
        for rule, (passed, error) in zip(spec.rules, results, strict=False):
            gname = f"{pname}/{rule.name}"
            if error:
                gates.append(
                    _gate(
                        gname,
                        "Rule",
                        False,
                        "RuleError",
                        f"rule {gname} {error}; fix the rule or the Promotion",
                        blocking=True,
                    )
                )
            elif not passed:
                gates.append(
                    _gate(
                        gname,
                        "Rule",
                        False,
                        "RuleFailed",
                        f"rule {gname}: {rule.message or 'is false: ' + rule.expression}",
                        blocking=True,
                    )
                )
            else:
                gates.append(_gate(gname, "Rule", True, "RulePassed", f"rule {gname} holds"))

        emergency_path = wants_emergency and spec.emergency is not None
        if emergency_path:
            assert spec.emergency is not None
            emergency_used = True
            retro_within.append(durations.parse(spec.emergency.retro_review_within))
            retro_needs.extend(approvals_mod.needs_of(spec.approvals.rules, {}, True))
            needs: tuple[approvals_mod.RuleNeed, ...] = (
                approvals_mod.RuleNeed(
                    "emergency", frozenset(spec.emergency.groups), frozenset(), spec.emergency.required
                ),
            )
            gates.append(
                _gate(
                    f"{pname}/emergency",
                    "Emergency",
                    True,
                    decision.EMERGENCY_PATH,
                    f"emergency change: {spec.emergency.required} approval(s) from "
                    f"{', '.join(spec.emergency.groups)}; retro review due within "
                    f"{spec.emergency.retro_review_within}; windows, wait timer and soak do not apply",
                )
            )
        else:
            if wants_emergency:
                gates.append(
                    _gate(
                        f"{pname}/emergency",
                        "Emergency",
                        True,
                        "EmergencyNotAllowed",
                        f"policy {pname} has no emergency path; its normal approvals, windows and "
                        "timers apply",
                    )
                )
            overrides: dict[str, int] = {}
            allow_zero = False
            for threshold, (passed, error) in zip(
                spec.risk_thresholds, results[len(spec.rules) :], strict=False
            ):
                gname = f"{pname}/{threshold.name}"
                if error:
                    gates.append(
                        _gate(
                            gname,
                            "RiskThreshold",
                            True,
                            "RiskThresholdError",
                            f"risk threshold {gname} {error}; the full approval requirement applies",
                        )
                    )
                    break
                if passed:
                    overrides, allow_zero = dict(threshold.counts), threshold.allow_without_human_approval
                    gates.append(
                        _gate(
                            gname,
                            "RiskThreshold",
                            True,
                            "RiskThresholdApplied",
                            f"risk threshold {gname} applies",
                        )
                    )
                    break
            needs = approvals_mod.needs_of(spec.approvals.rules, overrides, allow_zero)
            explicit_zero = explicit_zero or (allow_zero and sum(n.count for n in needs) == 0)
            if spec.change_windows is not None:
                verdict = windows.evaluate(spec.change_windows, now)
                gates.append(
                    _gate(
                        f"{pname}/change-windows",
                        "ChangeWindow",
                        verdict.open,
                        verdict.reason,
                        verdict.message,
                        blocking=verdict.reason == "InvalidTimeZone",
                    )
                )
                if verdict.next_open is not None:
                    looks.append(verdict.next_open)
            wait = durations.parse(spec.wait_timer)
            if wait:
                end = cycle_start + wait
                if now >= end:
                    gates.append(
                        _gate(
                            f"{pname}/wait-timer",
                            "WaitTimer",
                            True,
                            "WaitTimerElapsed",
                            f"wait timer {spec.wait_timer} elapsed",
                        )
                    )
                else:
                    looks.append(end)
                    gates.append(
                        _gate(
                            f"{pname}/wait-timer",
                            "WaitTimer",
                            False,
                            "WaitTimerRunning",
                            f"wait timer {spec.wait_timer} runs until {_fmt(end)}",
                        )
                    )

        # Approvals under this policy.
        reject_groups = list(needs) + list(approvals_mod.needs_of(spec.approvals.rules, {}, True))
        max_age = durations.parse(spec.approvals.max_age) if spec.approvals.max_age else None
        eligible: list[approvals_mod.Candidate] = []
        for c in candidates:
            if c.name in duplicates:
                judged[c.name].append(
                    approvals_mod.Judgement(
                        False,
                        "Duplicate",
                        f"{c.approver} approved again later; the later Approval is the one judged",
                    )
                )
                continue
            conflict = approvals_mod.separation_of_duties(c, requester, authors)
            if conflict is not None:  # never counts, whatever the policy says (``forbidSelfApproval`` is always true)
                judged[c.name].append(conflict)
                continue
            if c.decision == "Reject":
                if any(n.admits(c) for n in reject_groups):
                    rejected_by.append(c)
                    judged[c.name].append(
                        approvals_mod.Judgement(True, "Rejected", f"{c.approver} rejected this spec")
                    )
                else:
                    judged[c.name].append(
                        approvals_mod.Judgement(
                            False,
                            "NotInApproverGroups",
                            f"{c.approver} is in none of the groups policy {pname} accepts; "
                            "the Reject does not count",
                        )
                    )
                continue
            if max_age is not None and c.at + max_age <= now:
                judged[c.name].append(
                    approvals_mod.Judgement(
                        False,
                        "Expired",
                        f"approved {_fmt(c.at)}, older than maxAge {spec.approvals.max_age}; approve again",
                    )
                )
                continue
            if not any(n.count > 0 and n.admits(c) for n in needs):
                accepted = ", ".join(sorted({g for n in needs if n.count > 0 for g in n.groups | n.users}))
                judged[c.name].append(
                    approvals_mod.Judgement(
                        False,
                        "NotInApproverGroups",
                        f"{c.approver} is in none of the groups policy {pname} needs ({accepted or 'none'})",
                    )
                )
                continue
            eligible.append(c)
        assignment = approvals_mod.assign(needs, eligible)
        filled: dict[str, list[str]] = {n.name: [] for n in needs}
        for c in eligible:
            rule_name = assignment.get(c.name)
            if rule_name is None:
                judged[c.name].append(
                    approvals_mod.Judgement(
                        False,
                        "NotNeeded",
                        f"every rule {c.approver} qualifies for under {pname} is already filled",
                    )
                )
                continue
            filled[rule_name].append(c.approver)
            if emergency_path:
                emergency_approvers.add(c.approver)
            judged[c.name].append(
                approvals_mod.Judgement(
                    True, "Counted", f"{c.approver}'s approval counts for {rule_name}", f"{pname}/{rule_name}"
                )
            )
            filled_msgs.append(f"{c.approver}'s approval counts for {rule_name}")
            if max_age is not None:
                looks.append(c.at + max_age)
        missing = [(n, n.count - len(filled[n.name])) for n in needs if len(filled[n.name]) < n.count]
        policy_required = sum(n.count for n in needs)
        required += policy_required
        counted += sum(min(len(filled[n.name]), n.count) for n in needs)
        for need, short in missing:
            waiting.append(
                f"{short} approval{'s' if short > 1 else ''} from {need.who()} ({pname}/{need.name})"
            )
        if missing:
            gates.append(
                _gate(
                    f"{pname}/approvals",
                    "Approvals",
                    False,
                    "AwaitingApprovals",
                    "waiting for " + "; ".join(f"{s} from {n.who()} ({n.name})" for n, s in missing),
                )
            )
        else:
            gates.append(
                _gate(
                    f"{pname}/approvals",
                    "Approvals",
                    True,
                    "ApprovalsSatisfied",
                    f"{policy_required} approval(s) counted"
                    if policy_required
                    else "no approvals required by this policy",
                )
            )

    if applied and required == 0 and not explicit_zero:
        gates.append(
            _gate(
                "approvals",
                "Approvals",
                False,
                "NoApproversConfigured",
                "no matching policy requires an approval; add approval rules (a change is never "
                "approved without a human unless a risk threshold says allowWithoutHumanApproval)",
                blocking=True,
            )
        )

    if obj.spec.source is not None and not emergency_used:
        gates.append(_source_gate(obj.spec.source, obj.spec.image, known.source, now, looks))

    for refused_name, judgement in refused.items():
        judged[refused_name] = [judgement]
    for item in change_items:
        if not judged[item.metadata.name]:
            judged[item.metadata.name] = [
                approvals_mod.Judgement(False, "NoMatchingPolicy", "no policy applies")
            ]

    # Phase.
    if rejected_by:
        phase = phases.Phase.REJECTED
    elif any(g.blocking for g in gates):
        phase = phases.Phase.PENDING
    elif all(g.passed for g in gates):
        phase = phases.Phase.APPROVED
    else:
        phase = phases.Phase.AWAITING_APPROVAL

    # Emergency retro review.
    retro_due: datetime.datetime | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime.datetime | None = None
    retro_judged: Judgements = {}
    if emergency_used:
        approved_at = status.approved_at if same_cycle and status.approved_at else None
        if approved_at is None and phase is phases.Phase.APPROVED:
            approved_at = now
        if approved_at is not None:
            retro_due = approved_at + min(retro_within)
    retro_candidates, retro_refused = approvals_mod.prejudge(
        retro_items, spec_hash, known.verified_approvals, known.can_approve
    )
    for retro_name, judgement in retro_refused.items():
        retro_judged[retro_name] = [judgement]
    for c in retro_candidates:
        conflict = approvals_mod.separation_of_duties(c, requester, authors)
        if not emergency_used:
            result = approvals_mod.Judgement(
                False, "NotEmergency", "only emergency changes need a retro review"
            )
        elif conflict is not None:
            result = conflict
        elif c.decision != "Approve":
            result = approvals_mod.Judgement(
                False,
                "RetroReviewRejected",
                f"{c.approver} did not accept the emergency change in retro review",
            )
        elif c.approver in emergency_approvers:
            result = approvals_mod.Judgement(
                False,
                "OwnEmergencyApproval",
                f"{c.approver} approved the emergency change and cannot review it",
            )
        elif not any(n.admits(c) for n in retro_needs):
            result = approvals_mod.Judgement(
                False, "NotInApproverGroups", f"{c.approver} is not a normal approver for this change"
            )
        elif reviewed_by is not None:
            result = approvals_mod.Judgement(False, "NotNeeded", "the retro review is already closed")
        else:
            reviewed_by, reviewed_at = c.approver, c.at
            result = approvals_mod.Judgement(True, "RetroReviewed", f"{c.approver} closed the retro review")
        retro_judged[c.name] = [result]
    if retro_due is not None and reviewed_by is None:
        looks.append(retro_due)

    verdicts = tuple(
        _verdict(item, judged if item.spec.purpose == "Change" else retro_judged) for item in mine
    )
    ready = phase in (phases.Phase.AWAITING_APPROVAL, phases.Phase.APPROVED)
    future = [t for t in looks if t > now]
    next_look = min(future) if future and phase is not phases.Phase.REJECTED else None
    summary = _summary(phase, gates, rejected_by, waiting, filled_msgs, retro_due, reviewed_by)
    return decision.Decision(
        phase=phase,
        spec_hash=spec_hash,
        gates=tuple(gates),
        approvals=verdicts,
        required_approvals=required,
        counted_approvals=counted,
        summary=summary,
        next_look_at=next_look,
        emergency=emergency_used,
        retro_review_due_at=retro_due,
        retro_reviewed_by=reviewed_by,
        retro_reviewed_at=reviewed_at,
        ready_for_approval=ready,
        policies=tuple(p.metadata.name for p in applied),
    )


def _source_gate(
    source: promotion.Source,
    image: str,
    state: facts.SourceState | None,
    now: datetime.datetime,
    looks: list[datetime.datetime],
) -> decision.GateVerdict:
    where = f"{source.kind} {source.namespace}/{source.name}"
    if state is None:
        return _gate("source", "SourceSoak", False, "SourceNotFound", f"source {where} was not found")
    digest = image.partition("@")[2]
    if digest:
        same = state.image.endswith("@" + digest) or (state.image_id or "").endswith(digest)
    else:
        same = state.image == image
    if not same:
        return _gate(
            "source",
            "SourceSoak",
            False,
            "SourceImageMismatch",
            f"source {where} runs {state.image}, not {image}; promote it there first",
        )
    if not state.healthy or state.available_since is None:
        return _gate(
            "source", "SourceSoak", False, "SourceUnhealthy", f"source {where} is not available and healthy"
        )
    soak = durations.parse(source.min_soak)
    until = state.available_since + soak
    if now < until:
        looks.append(until)
        return _gate(
            "source",
            "SourceSoak",
            False,
            "Soaking",
            f"source {where} must run the image healthy until {_fmt(until)} (minSoak {source.min_soak})",
        )
    return _gate(
        "source", "SourceSoak", True, "Soaked", f"source {where} has run the image for {source.min_soak}"
    )


def _verdict(item: approval.Approval, judged: Judgements) -> decision.ApprovalVerdict:
    results = judged.get(item.metadata.name) or [approvals_mod.Judgement(False, "NotJudged", "not judged")]
    counted = [j for j in results if j.counted]
    chosen = counted[0] if counted else results[0]
    rules = [j.rule for j in counted if j.rule]
    return decision.ApprovalVerdict(
        approval=item.metadata.name,
        approver=item.spec.approver,
        groups=tuple(item.spec.groups),
        decision=item.spec.decision,
        at=item.spec.stamp.at if item.spec.stamp else None,
        counted=bool(counted),
        rule=", ".join(rules) if rules else None,
        reason=chosen.reason,
        message=chosen.message,
        purpose=item.spec.purpose,
    )


def _summary(
    phase: phases.Phase,
    gates: Sequence[decision.GateVerdict],
    rejected_by: Sequence[approvals_mod.Candidate],
    waiting: Sequence[str],
    filled: Sequence[str],
    retro_due: datetime.datetime | None,
    reviewed_by: str | None,
) -> str:
    if phase is phases.Phase.REJECTED:
        who = ", ".join(sorted({c.approver for c in rejected_by}))
        return f"rejected by {who}; change the spec to start a new approval cycle"
    if phase is phases.Phase.PENDING:
        return "; ".join(g.message for g in gates if g.blocking)
    parts: list[str] = []
    if waiting:
        parts.append("waiting for " + " and ".join(waiting))
    parts.extend(dict.fromkeys(filled))
    parts.extend(g.message for g in gates if not g.passed and g.kind != "Approvals")
    if phase is phases.Phase.APPROVED:
        parts.insert(0, "approved, ready to deploy")
    if retro_due is not None:
        parts.append(
            f"retro review closed by {reviewed_by}" if reviewed_by else f"retro review due {_fmt(retro_due)}"
        )
    return "; ".join(parts)
