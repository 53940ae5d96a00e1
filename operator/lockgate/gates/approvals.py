"""Which Approvals count: stamp, spec hash, RBAC and separation-of-duties checks, expiry, and the
assignment of distinct approvers to rules (one approver fills at most one rule; maximum matching)."""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from lockgate.api import approval, gatepolicy
from lockgate.gates import facts


@dataclasses.dataclass(frozen=True)
class Candidate:
    """An Approval that passed the policy-independent checks (stamp, spec hash, RBAC)."""

    name: str
    approver: str
    groups: frozenset[str]
    decision: str
    at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class Judgement:
    """How one policy judged one Approval."""

    counted: bool
    reason: str
    message: str
    rule: str | None = None


@dataclasses.dataclass(frozen=True)
class RuleNeed:
    """One approval rule with its effective count."""

    name: str
    groups: frozenset[str]
    users: frozenset[str]
    count: int

    def admits(self, candidate: Candidate) -> bool:
        """Whether the candidate may fill this rule."""
        return candidate.approver in self.users or not self.groups.isdisjoint(candidate.groups)

    def who(self) -> str:
        """The groups and users that can fill the rule, for messages."""
        return (
            ", ".join(sorted(self.groups) + sorted(self.users))
            or "nobody (the rule names no groups or users)"
        )


def prejudge(
    items: Iterable[approval.Approval],
    spec_hash: str,
    verified: frozenset[str],
    can_approve: Mapping[str, bool],
    conflicted: Callable[[str], Judgement | None] | None = None,
) -> tuple[list[Candidate], dict[str, Judgement]]:
    """Split Approvals into candidates and those that never count, with the reason.

    ``conflicted`` (separation of duties: the requester and the declared author never count) is asked
    before RBAC, so a requester's or author's approval says why it can never count, not merely that
    its author lacks the permission today.
    """
    candidates: list[Candidate] = []
    refused: dict[str, Judgement] = {}
    for item in items:
        name, spec = item.metadata.name, item.spec
        if spec.stamp is None or not spec.approver:
            refused[name] = Judgement(
                False,
                "Unstamped",
                "has no admission stamp: it was written around the admission webhook and never counts",
            )
        elif name not in verified:
            refused[name] = Judgement(
                False,
                "SignatureInvalid",
                "its stamp signature does not verify: written "
                "around the admission webhook or edited; it never counts",
            )
        elif spec.spec_hash is None:
            refused[name] = Judgement(
                False,
                "SpecHashMissing",
                "does not name the spec it approves; create it "
                "with `kubectl lockgate approve` or set spec.specHash",
            )
        elif spec.spec_hash != spec_hash:
            refused[name] = Judgement(
                False,
                "SpecChanged",
                "approves an earlier version of the spec; the spec "
                "changed since, so a new approval is needed",
            )
        elif conflicted is not None and (conflict := conflicted(spec.approver)) is not None:
            refused[name] = conflict
        elif can_approve.get(spec.approver) is not True:
            refused[name] = Judgement(
                False,
                "NotAuthorized",
                f"{spec.approver} lacks the RBAC permission to approve promotions in this namespace",
            )
        else:
            candidates.append(
                Candidate(name, spec.approver, frozenset(spec.groups), spec.decision, spec.stamp.at)
            )
    candidates.sort(key=lambda c: (c.at, c.name))
    return candidates, refused


def author_names(author: str | None) -> frozenset[str]:
    """Lower-cased names a declared ``change.author`` stands for (``Name <user@host>`` yields all three)."""
    if not author or not author.strip():
        return frozenset()
    text = author.strip().lower()
    names = {text}
    email = re.search(r"<([^>]+)>", text)
    if email:
        names |= {email.group(1), email.group(1).split("@")[0], text[: email.start()].strip()}
    elif "@" in text:
        names.add(text.split("@")[0])
    return frozenset(n for n in names if n)


def is_author(username: str, names: frozenset[str]) -> bool:
    """Whether a username is (or may be) the declared author."""
    user = username.lower()
    return user in names or user.split("@")[0] in names


def separation_of_duties(
    candidate: Candidate, requester: facts.Identity | None, authors: frozenset[str]
) -> Judgement | None:
    """Why the candidate may never count (separation of duties: requester or declared author), or None."""
    if requester is not None and candidate.approver == requester.username:
        return Judgement(
            False, "SelfApproval", f"{candidate.approver} requested this change and cannot approve it"
        )
    if is_author(candidate.approver, authors):
        return Judgement(
            False, "AuthorApproval", f"{candidate.approver} authored this change and cannot approve it"
        )
    return None


def assign(needs: Sequence[RuleNeed], approvers: Sequence[Candidate]) -> dict[str, str]:
    """Approval name -> rule name: a maximum matching of distinct approvers to rule slots.

    Each rule has ``count`` slots; each approver fills at most one slot of one rule. Augmenting paths
    (Kuhn) in a fixed order make the result deterministic; a maximum matching fills every slot
    whenever that is possible at all.
    """
    slots = [need for need in needs for _ in range(need.count)]
    slot_owner: list[int | None] = [None] * len(slots)

    def augment(i: int, seen: set[int]) -> bool:
        for s, need in enumerate(slots):
            if s in seen or not need.admits(approvers[i]):
                continue
            seen.add(s)
            owner = slot_owner[s]
            if owner is None or augment(owner, seen):
                slot_owner[s] = i
                return True
        return False

    for i in range(len(approvers)):
        augment(i, set())
    return {approvers[i].name: slots[s].name for s, i in enumerate(slot_owner) if i is not None}


def needs_of(
    rules: Sequence[gatepolicy.ApprovalRule], overrides: Mapping[str, int], allow_zero: bool
) -> tuple[RuleNeed, ...]:
    """Effective rule counts after a risk threshold, never below one approval in total unless allowed."""
    needs = [
        RuleNeed(r.name, frozenset(r.groups), frozenset(r.users), max(0, overrides.get(r.name, r.count)))
        for r in rules
    ]
    if overrides and not allow_zero and sum(n.count for n in needs) < 1:
        for i, (need, rule) in enumerate(zip(needs, rules, strict=True)):
            if rule.count > 0:
                needs[i] = dataclasses.replace(need, count=1)
                break
    return tuple(needs)
