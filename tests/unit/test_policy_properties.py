"""Property checks of the policy evaluator (hypothesis): the compiled wildcard matchers agree with
a plain reference matcher, and decide() keeps the algebra of AWS's evaluation logic (deny wins,
order does not matter, session policies intersect)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from signalite.identity.policy import Outcome, Policy, RequestContext, decide, parse_policy
from signalite.identity.policy_glob import Lit, Mode, compile_pattern

SETTINGS = settings(max_examples=150, deadline=None, database=None)


def reference_glob(pattern: str, value: str) -> bool:
    """The textbook dynamic-programming wildcard match: * any run, ? one character."""
    @cache
    def match(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(value)
        if pattern[i] == "*":
            return match(i + 1, j) or (j < len(value) and match(i, j + 1))
        return j < len(value) and pattern[i] in ("?", value[j]) and match(i + 1, j + 1)
    return match(0, 0)


def components(text: str) -> list[str]:
    return text.split(":", 5)


def reference_arn(pattern: str, value: str, *, resource: bool) -> bool:
    """Component by component; for a Resource element, a shorter pattern whose last component
    ends in * lets that * take the rest of the ARN."""
    if pattern == "*":
        return True
    p, v = components(pattern), components(value)
    if resource and len(p) < 6 and p[-1].endswith("*"):
        head = p[:-1]
        if len(v) < len(p):
            return False
        rest = ":".join(v[len(head):])
        last = p[-1][:-1]
        first_component = components(rest)[0]
        # the last pattern component without its final * must match a prefix of its component
        prefix_ok = any(reference_glob(last, first_component[:k]) for k in range(len(first_component) + 1))
        return all(reference_glob(a, b) for a, b in zip(head, v)) and prefix_ok
    return len(p) == len(v) and all(reference_glob(a, b) for a, b in zip(p, v))


text = st.text(alphabet="ab*?", max_size=8)
value_text = st.text(alphabet="ab", max_size=10)
arn_component = st.text(alphabet="ab*?", max_size=4)
value_component = st.text(alphabet="ab", max_size=5)


@SETTINGS
@given(text, value_text)
def test_glob_matches_the_reference(pattern, value):
    assert (compile_pattern([Lit(pattern)], Mode.GLOB)(value) is not None) == reference_glob(pattern, value)


@SETTINGS
@given(st.lists(arn_component, min_size=1, max_size=7), st.lists(value_component, min_size=1, max_size=7),
       st.booleans())
def test_arn_and_resource_matching_match_the_reference(pattern_parts, value_parts, resource):
    pattern, value = ":".join(pattern_parts), ":".join(value_parts)
    mode = Mode.RESOURCE if resource else Mode.ARN
    got = compile_pattern([Lit(pattern)], mode)(value) is not None
    assert got == reference_arn(pattern, value, resource=resource)


def test_pathological_patterns_do_not_backtrack():
    # with naive translation to .*a.*a... these take exponential time on a near miss
    pattern = "*a" * 30 + "*b"
    value = "a" * 5000
    assert compile_pattern([Lit(pattern)], Mode.GLOB)(value) is None
    arn = "arn:aws:kinesisvideo:" + "*a" * 30 + "*b:1:channel/" + "*a" * 30 + "*b"
    long = "arn:aws:kinesisvideo:" + "a" * 3000 + ":1:channel/" + "a" * 3000
    assert compile_pattern([Lit(arn)], Mode.RESOURCE)(long) is None
    assert compile_pattern([Lit(arn)], Mode.ARN)(long) is None


# --- decide() algebra -----------------------------------------------------------------------

ACTIONS = ["kinesisvideo:ConnectAsMaster", "kinesisvideo:ConnectAsViewer", "kinesisvideo:DescribeSignalingChannel",
           "iam:GetUser"]
ACTION_PATTERNS = ACTIONS + ["kinesisvideo:*", "kinesisvideo:Connect*", "*", "iam:*", "kinesisvideo:ConnectAs?iewer"]
RESOURCES = ["arn:aws:kinesisvideo:us-west-2:123456789012:channel/a/1",
             "arn:aws:kinesisvideo:us-west-2:123456789012:channel/b/2", "*"]
RESOURCE_PATTERNS = RESOURCES[:2] + ["*", "arn:aws:kinesisvideo:*:123456789012:channel/a/*",
                                     "arn:aws:kinesisvideo:*", "arn:aws:kinesisvideo:us-west-2:*:channel/${aws:username}/*"]
CONDITIONS = [None, {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"Bool": {"aws:SecureTransport": "true"}},
              {"StringEquals": {"aws:username": "a"}}]

statement = st.builds(
    lambda effect, negate_action, actions, negate_resource, resources, condition: {
        "Effect": effect, ("NotAction" if negate_action else "Action"): actions,
        ("NotResource" if negate_resource else "Resource"): resources,
        **({"Condition": condition} if condition else {})},
    st.sampled_from(["Allow", "Deny"]), st.booleans(), st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=3),
    st.booleans(), st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=2), st.sampled_from(CONDITIONS))
statements = st.lists(statement, min_size=1, max_size=5)
contexts = st.builds(
    lambda action, resource, ip, secure, username: RequestContext(
        action, resource, f"arn:aws:iam::123456789012:user/{username or 'x'}", "123456789012", username, "AIDAX", ip,
        secure, 1.7e9),
    st.sampled_from(ACTIONS), st.sampled_from(RESOURCES), st.sampled_from(["10.1.1.1", "192.0.2.1", None]),
    st.booleans(), st.sampled_from(["a", "b", None]))


def make(items: list[dict[str, Any]], kind: str = "identity") -> Policy:
    return parse_policy(json.dumps({"Version": "2012-10-17", "Statement": items}), kind=kind)  # type: ignore[arg-type]


ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}
DENY_ALL = {"Effect": "Deny", "Action": "*", "Resource": "*"}


@SETTINGS
@given(statements, contexts)
def test_a_deny_that_applies_always_wins(items, ctx):
    decision = decide(ctx, [make(items), make([DENY_ALL])])
    assert decision.outcome is Outcome.EXPLICIT_DENY
    assert decide(ctx, [make(items)], [make([DENY_ALL], "session")]).outcome is Outcome.EXPLICIT_DENY


@SETTINGS
@given(statements, contexts, st.randoms(use_true_random=False))
def test_order_of_statements_and_policies_does_not_matter(items, ctx, rng):
    shuffled = list(items)
    rng.shuffle(shuffled)
    one = decide(ctx, [make(items)]).outcome
    assert decide(ctx, [make(shuffled)]).outcome is one
    assert decide(ctx, [make([i]) for i in reversed(items)]).outcome is one


@SETTINGS
@given(statements, contexts)
def test_allow_all_session_policy_changes_nothing(items, ctx):
    assert decide(ctx, [make(items)], [make([ALLOW_ALL], "session")]).outcome is decide(ctx, [make(items)]).outcome


@SETTINGS
@given(statements, statements, contexts)
def test_without_denies_a_session_allows_exactly_the_intersection(identity_items, session_items, ctx):
    identity = [make([dict(i, Effect="Allow") for i in identity_items])]
    session = [make([dict(i, Effect="Allow") for i in session_items], "session")]
    both = decide(ctx, identity, session).allowed
    assert both == (decide(ctx, identity).allowed and decide(ctx, session).allowed)


@SETTINGS
@given(statements, statement, contexts)
def test_adding_an_allow_never_takes_a_permission_or_a_deny_away(items, extra, ctx):
    before = decide(ctx, [make(items)]).outcome
    after = decide(ctx, [make(items + [dict(extra, Effect="Allow")])]).outcome
    if before is not Outcome.IMPLICIT_DENY:
        assert after is before


@SETTINGS
@given(statements, contexts)
def test_not_action_is_the_complement_of_action(items, ctx):
    item = dict(items[0], Effect="Allow")
    key = "NotAction" if "NotAction" in item else "Action"
    flipped = {k: v for k, v in item.items() if k != key}
    flipped["Action" if key == "NotAction" else "NotAction"] = item[key]
    plain = make([{k: v for k, v in item.items() if k != "Condition"}])
    other = make([{k: v for k, v in flipped.items() if k != "Condition"}])
    # the resource element is the same in both, so exactly one allows when it matches
    results = {decide(ctx, [plain]).allowed, decide(ctx, [other]).allowed}
    assert results in ({True, False}, {False})
