"""Whether a role's trust policy lets a caller assume it (``sts:AssumeRole``): the one place
AssumeRole asks. AWS's whole decision (:func:`~signalite.identity.policy.decide_assume_role`):
an explicit deny anywhere wins; the trust policy must allow; in the role's own account a trust
statement naming the caller is enough, one naming the caller's role is limited by its session
policies, and one naming only the account — or any cross-account call — also needs the caller's
identity-based policies to allow ``sts:AssumeRole`` on the role.
"""

from __future__ import annotations

from ..aws.principal import Principal
from ..context import OpContext
from .authorize import AUTHORIZER
from .policy import MalformedPolicy, RequestContext, decide_assume_role, parse_policy

ACTION = "sts:AssumeRole"


async def trust_allows(ctx: OpContext, principal: Principal, trust_policy: str, role_arn: str) -> bool:
    """Whether ``principal`` may assume the role ``role_arn`` whose trust policy is ``trust_policy``."""
    try:
        trust = parse_policy(trust_policy, kind="trust", name="trust policy")
    except MalformedPolicy:  # stored before documents were checked this strictly: refuse
        return False
    grants = await ctx.resource(AUTHORIZER).grants(principal)
    who = principal.who
    context = RequestContext(action=ACTION, resource=role_arn, principal_arn=who.arn, account=who.account_id,
                             username=principal.username, userid=who.user_id, source_ip=None,
                             secure_transport=True, current_time=ctx.clock.now())
    return decide_assume_role(context, grants.identity, trust, grants.session).allowed
