"""The IAM operations Signalite serves: users, access keys, inline and managed policies, roles.

Each is a short function over the store's identity records (:class:`~signalite.store.Entity`),
in the caller's account only: nothing here can name or reach another account's records. What
hangs off a user or role (its keys, inline policies, attached policy ARNs) lives in its own
record and changes by read-modify-write at the record's revision (:func:`_modify`), so a delete
that finds nothing attached cannot race with an attach on another node; a managed policy counts
its attachments the same way, and an attach whose policy vanished meanwhile is undone. Errors,
limits and messages are AWS's (``NoSuchEntity`` 404, ``EntityAlreadyExists`` 409,
``DeleteConflict`` 409, ``LimitExceeded`` 409, ``MalformedPolicyDocument`` 400, …).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Awaitable, Callable

from ..aws.errors import ServiceError
from ..aws.principal import ROOT, USER
from ..context import OpContext
from ..store import Entity, LimitExceeded, NameInUse
from . import documents, names
from .documents import validate_document
from .keys import ACTIVE, DELETED
from .keys import KIND as KEY
from .service import ACCOUNT, IDENTITY

USER_KIND, ROLE_KIND, POLICY_KIND = "user", "role", "policy"

USERS_PER_ACCOUNT = 5000
ROLES_PER_ACCOUNT = 1000
POLICIES_PER_ACCOUNT = 1500
KEYS_PER_USER = 2
MANAGED_PER_ENTITY = 10
VERSIONS_PER_POLICY = 5
INLINE_SIZE = {USER_KIND: 2048, ROLE_KIND: 10240}
"""Aggregate size of an entity's inline policies, whitespace not counted."""
MANAGED_SIZE = 6144
TRUST_SIZE = 2048
MAX_TRIES = 50
"""Read-modify-write attempts before answering ConcurrentModification."""


# --- errors -------------------------------------------------------------------------------------

def no_such(message: str) -> ServiceError:
    return ServiceError("NoSuchEntity", message)


def _conflict(message: str) -> ServiceError:
    return ServiceError("DeleteConflict", message)


def _limit(message: str) -> ServiceError:
    return ServiceError("LimitExceeded", message)


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidInput", message)


def _not_found_message(kind: str, name: str) -> str:
    return f"The {kind} with name {name} cannot be found."


# --- records ------------------------------------------------------------------------------------

async def _entity(ctx: OpContext, kind: str, name: str) -> Entity:
    entity = await ctx.store.get_entity(ctx.account, kind, name)
    if entity is None:
        raise no_such(_not_found_message(kind, name))
    return entity


async def _policy(ctx: OpContext, arn: str) -> Entity:
    """The caller's managed policy ``arn`` (AWS-managed policies are not served)."""
    parsed = names.parse_iam_arn(arn, POLICY_KIND)
    if parsed is None:
        raise _invalid(f"ARN {arn} is not valid.")
    entity = None
    if parsed.account == ctx.account:
        entity = await ctx.store.get_entity(ctx.account, POLICY_KIND, parsed.name)
    if entity is None or entity.data["arn"] != arn:
        raise no_such(f"Policy {arn} does not exist or is not attachable.")
    return entity


async def _modify(ctx: OpContext, read: Callable[[], Awaitable[Entity]],
                  change: Callable[[Entity], dict[str, Any] | None]) -> Entity:
    """Apply ``change`` (the record → its new data, or None for no change; it may raise) to the
    record ``read`` returns, at the revision read, reading again when another writer came first."""
    for _ in range(MAX_TRIES):
        current = await read()
        data = change(current)
        if data is None:
            return current
        updated = current.evolve(data=data)
        if await ctx.store.update_entity(updated):
            return updated
    raise ServiceError("ConcurrentModification", "The request was rejected because multiple requests to change "
                       "this object were submitted simultaneously. Wait a few minutes and submit your request again.")


def _copy(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a record's data whose lists and dicts can be changed without touching the read."""
    return {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v) for k, v in data.items()}


# --- pagination -----------------------------------------------------------------------------------

def _marker_name(p: dict[str, Any]) -> str:
    marker = p.get("Marker")
    if not marker:
        return ""
    try:
        return base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise ServiceError("ValidationError", "Invalid Marker.") from None


def _marker(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode("utf-8")).rstrip(b"=").decode("ascii")


def _page_out(member: str, items: list[Any], truncated: bool, last: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {member: items, "IsTruncated": truncated}
    if truncated and last is not None:
        out["Marker"] = _marker(last)
    return out


async def _store_page(ctx: OpContext, kind: str, p: dict[str, Any], member: str,
                      render: Callable[[Entity], dict[str, Any]],
                      keep: Callable[[Entity], bool] = lambda e: True) -> dict[str, Any]:
    """One page of the account's records of ``kind`` (``PathPrefix``, ``Marker``, ``MaxItems``)."""
    max_items: int = p.get("MaxItems", 100)
    after = _marker_name(p)
    page: list[Entity] = []
    more = False
    while True:
        batch = await ctx.store.list_entities(ctx.account, kind, path_prefix=p.get("PathPrefix", "/"),
                                              after=after, limit=max_items + 1)
        for entity in batch:
            if keep(entity):
                if len(page) == max_items:
                    more = True
                    break
                page.append(entity)
        if more or len(batch) <= max_items:
            break
        after = batch[-1].name
    return _page_out(member, [render(e) for e in page], more, page[-1].name if page else None)


def _list_page(p: dict[str, Any], member: str, items: list[Any], key: Callable[[Any], str] = str) -> dict[str, Any]:
    """One page of an in-record list already in order (inline policy names, attached policies…)."""
    max_items: int = p.get("MaxItems", 100)
    after = _marker_name(p)
    rest = [i for i in items if key(i).lower() > after.lower()] if after else items
    page = rest[:max_items]
    return _page_out(member, page, len(rest) > max_items, key(page[-1]) if page else None)


# --- common members ---------------------------------------------------------------------------------

def _tags(p: dict[str, Any]) -> list[dict[str, str]]:
    tags: list[dict[str, str]] = p.get("Tags", [])
    if len({t["Key"].lower() for t in tags}) != len(tags):
        raise _invalid("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
    return tags


def _no_boundary(p: dict[str, Any]) -> None:
    if p.get("PermissionsBoundary"):
        raise _invalid("Signalite does not support permissions boundaries.")


async def _insert(ctx: OpContext, entity: Entity, limit: int, exists: str, quota: str) -> None:
    try:
        await ctx.store.insert_entity(entity, limit=limit)
    except NameInUse:
        raise ServiceError("EntityAlreadyExists", exists) from None
    except LimitExceeded:
        raise _limit(f"Cannot exceed quota for {quota}: {limit}") from None


# --- users ------------------------------------------------------------------------------------------

def _user_out(user: Entity, with_tags: bool = True) -> dict[str, Any]:
    out = {"Path": user.path, "UserName": user.name, "UserId": user.id, "Arn": user.data["arn"],
           "CreateDate": user.created}
    if with_tags and user.data.get("tags"):
        out["Tags"] = user.data["tags"]
    return out


async def create_user(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    _no_boundary(p)
    name, path = p["UserName"], p.get("Path", "/")
    user = Entity(ctx.account, USER_KIND, name, names.unique_id(names.USER_ID), path, float(int(ctx.clock.now())),
                  {"arn": names.iam_arn(ctx.account, "user", path, name), "tags": _tags(p),
                   "keys": [], "policies": {}, "attached": []})
    await _insert(ctx, user, USERS_PER_ACCOUNT, f"User with name {name} already exists.", "UsersPerAccount")
    return {"User": _user_out(user)}


async def _caller_user(ctx: OpContext, p: dict[str, Any]) -> Entity | None:
    """The user ``UserName`` names, else the calling user; None for a root caller (its account)."""
    if p.get("UserName"):
        return await _entity(ctx, USER_KIND, p["UserName"])
    who = ctx.principal.who
    if who.kind == ROOT:
        return None
    if who.kind == USER:
        return await _entity(ctx, USER_KIND, who.name)
    raise ServiceError("ValidationError", "Must specify userName when calling with non-User credentials")


async def get_user(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    user = await _caller_user(ctx, p)
    if user is None:
        account = await ctx.store.get_entity_by_id(ctx.account)
        root: dict[str, Any] = {"Path": "/", "UserId": ctx.account, "Arn": ctx.principal.who.arn}
        if account is not None:
            root["CreateDate"] = account.created
        return {"User": root}
    return {"User": _user_out(user)}


async def list_users(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    return await _store_page(ctx, USER_KIND, p, "Users", lambda u: _user_out(u, with_tags=False))


async def delete_user(ctx: OpContext, p: dict[str, Any]) -> None:
    for _ in range(MAX_TRIES):
        user = await _entity(ctx, USER_KIND, p["UserName"])
        if user.data["keys"]:
            raise _conflict("Cannot delete entity, must delete access keys first.")
        if user.data["policies"]:
            raise _conflict("Cannot delete entity, must delete policies first.")
        if user.data["attached"]:
            raise _conflict("Cannot delete entity, must detach all policies first.")
        if await ctx.store.delete_entity(user):
            return None
    raise ServiceError("ConcurrentModification", "The user changed while it was being deleted; try again.")


# --- access keys ------------------------------------------------------------------------------------

async def _key_owner(ctx: OpContext, p: dict[str, Any]) -> tuple[Entity, Entity | None]:
    """The record holding the keys ``p`` is about (a user's, or the account's for its root), and
    the user (None for the root)."""
    user = await _caller_user(ctx, p)
    if user is not None:
        return user, user
    account = await ctx.store.get_entity_by_id(ctx.account)
    if account is None:
        raise no_such(f"The account {ctx.account} cannot be found.")
    return account, None


def _reread(ctx: OpContext, entity: Entity) -> Callable[[], Awaitable[Entity]]:
    async def read() -> Entity:
        current = await ctx.store.get_entity_by_id(entity.id)
        if current is None:
            raise no_such(_not_found_message(entity.kind, entity.name))
        return current
    return read


def _env_root_key(ctx: OpContext, owner: Entity) -> list[dict[str, Any]]:
    """The server's configured root key, listed among its account's root keys."""
    root = ctx.resource(IDENTITY).root
    if owner.kind != ACCOUNT or owner.account != root.account_id:
        return []
    return [{"AccessKeyId": root.access_key_id, "Status": ACTIVE, "CreateDate": owner.created}]


def _is_env_root_key(ctx: OpContext, key_id: str) -> bool:
    return key_id == ctx.resource(IDENTITY).root.access_key_id


async def create_access_key(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    owner, user = await _key_owner(ctx, p)
    keys = ctx.resource(IDENTITY)
    record, secret = await keys.create(ctx.store, ctx.account, user, float(int(ctx.clock.now())))
    configured = len(_env_root_key(ctx, owner))

    def add(current: Entity) -> dict[str, Any]:
        if len(current.data["keys"]) + configured >= KEYS_PER_USER:
            raise _limit(f"Cannot exceed quota for AccessKeysPerUser: {KEYS_PER_USER}")
        data = _copy(current.data)
        data["keys"].append(record.id)
        return data

    try:
        await _modify(ctx, _reread(ctx, owner), add)
    except ServiceError:
        await ctx.store.delete_entity(record)
        raise
    out = {"AccessKeyId": record.id, "Status": ACTIVE, "SecretAccessKey": secret, "CreateDate": record.created}
    if user is not None:
        out["UserName"] = user.name
    return {"AccessKey": out}


async def _owned_key(ctx: OpContext, owner: Entity, key_id: str) -> Entity:
    key = await ctx.store.get_entity_by_id(key_id) if key_id in owner.data["keys"] else None
    if key is None or key.kind != KEY or key.account != ctx.account:
        raise no_such(f"The Access Key with id {key_id} cannot be found.")
    return key


async def list_access_keys(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    owner, user = await _key_owner(ctx, p)
    listed = _env_root_key(ctx, owner)
    for key_id in owner.data["keys"]:
        key = await ctx.store.get_entity_by_id(key_id)
        if key is not None and key.data["status"] != DELETED:
            listed.append({"AccessKeyId": key.id, "Status": key.data["status"], "CreateDate": key.created})
    if user is not None:
        for item in listed:
            item["UserName"] = user.name
    listed.sort(key=lambda k: str(k["AccessKeyId"]).lower())
    return _list_page(p, "AccessKeyMetadata", listed, key=lambda k: str(k["AccessKeyId"]))


def _env_root_key_is_fixed(key_id: str) -> ServiceError:
    return _invalid(f"The access key {key_id} is the server's root key (SIGNALITE_ACCESS_KEY_ID); it is changed "
                    "in the server's environment, not through IAM.")


async def update_access_key(ctx: OpContext, p: dict[str, Any]) -> None:
    key_id, status = p["AccessKeyId"], p["Status"]
    owner, _ = await _key_owner(ctx, p)
    if _is_env_root_key(ctx, key_id) and _env_root_key(ctx, owner):
        raise _env_root_key_is_fixed(key_id)
    key = await _owned_key(ctx, owner, key_id)

    def set_status(current: Entity) -> dict[str, Any] | None:
        if current.data["status"] == DELETED:
            raise no_such(f"The Access Key with id {key_id} cannot be found.")
        return None if current.data["status"] == status else {**current.data, "status": status}

    await _modify(ctx, _reread(ctx, key), set_status)
    ctx.resource(IDENTITY).changed(key_id)


async def delete_access_key(ctx: OpContext, p: dict[str, Any]) -> None:
    key_id = p["AccessKeyId"]
    owner, _ = await _key_owner(ctx, p)
    if _is_env_root_key(ctx, key_id) and _env_root_key(ctx, owner):
        raise _env_root_key_is_fixed(key_id)
    key = await _owned_key(ctx, owner, key_id)

    def remove(current: Entity) -> dict[str, Any]:
        if key_id not in current.data["keys"]:
            raise no_such(f"The Access Key with id {key_id} cannot be found.")
        data = _copy(current.data)
        data["keys"].remove(key_id)
        return data

    await _modify(ctx, _reread(ctx, owner), remove)
    # A tombstone without the secret, so that the key answers InvalidClientTokenId from now on.
    tombstone = {k: v for k, v in key.data.items() if k != "secret"}
    await ctx.store.update_entity(key.evolve(data={**tombstone, "status": DELETED}, revision=None))
    ctx.resource(IDENTITY).changed(key_id)


# --- inline policies (users and roles) -------------------------------------------------------------------

def _inline(kind: str, name_member: str) -> dict[str, Callable[[OpContext, dict[str, Any]], Awaitable[Any]]]:
    """Put/Get/List/Delete of the inline policies of ``kind`` (``user`` or ``role``)."""
    label = f"{kind} policy"

    async def put(ctx: OpContext, p: dict[str, Any]) -> None:
        owner, policy_name, document = p[name_member], p["PolicyName"], p["PolicyDocument"]
        validate_document(document, documents.IDENTITY)
        limit = INLINE_SIZE[kind]

        def keep(current: Entity) -> dict[str, Any]:
            data = _copy(current.data)
            data["policies"][policy_name.lower()] = {"name": policy_name, "document": document}
            if sum(documents.size(v["document"]) for v in data["policies"].values()) > limit:
                raise _limit(f"Maximum policy size of {limit} bytes exceeded for {kind} {owner}")
            return data

        await _modify(ctx, lambda: _entity(ctx, kind, owner), keep)

    async def get(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
        owner = await _entity(ctx, kind, p[name_member])
        stored = owner.data["policies"].get(p["PolicyName"].lower())
        if stored is None:
            raise no_such(_not_found_message(label, p["PolicyName"]))
        return {name_member: owner.name, "PolicyName": stored["name"],
                "PolicyDocument": documents.encoded(stored["document"])}

    async def list_(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
        owner = await _entity(ctx, kind, p[name_member])
        policy_names = sorted((v["name"] for v in owner.data["policies"].values()), key=str.lower)
        return _list_page(p, "PolicyNames", policy_names)

    async def delete(ctx: OpContext, p: dict[str, Any]) -> None:
        policy_name = p["PolicyName"]

        def remove(current: Entity) -> dict[str, Any]:
            if policy_name.lower() not in current.data["policies"]:
                raise no_such(_not_found_message(label, policy_name))
            data = _copy(current.data)
            del data["policies"][policy_name.lower()]
            return data

        await _modify(ctx, lambda: _entity(ctx, kind, p[name_member]), remove)

    prefix = kind.capitalize()
    return {f"Put{prefix}Policy": put, f"Get{prefix}Policy": get, f"List{prefix}Policies": list_,
            f"Delete{prefix}Policy": delete}


# --- managed policies -------------------------------------------------------------------------------

def _policy_out(policy: Entity, with_details: bool = True) -> dict[str, Any]:
    data = policy.data
    out = {"PolicyName": policy.name, "PolicyId": policy.id, "Arn": data["arn"], "Path": policy.path,
           "DefaultVersionId": data["default"], "AttachmentCount": len(data["attached"]),
           "PermissionsBoundaryUsageCount": 0, "IsAttachable": True, "CreateDate": policy.created,
           "UpdateDate": data["updated"]}
    if with_details and data.get("description"):
        out["Description"] = data["description"]
    if with_details and data.get("tags"):
        out["Tags"] = data["tags"]
    return out


def _check_managed(document: str) -> None:
    validate_document(document, documents.IDENTITY, managed=True)
    if documents.size(document) > MANAGED_SIZE:
        raise _limit(f"Cannot exceed quota for PolicySize: {MANAGED_SIZE}")


async def create_policy(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    name, path, document = p["PolicyName"], p.get("Path", "/"), p["PolicyDocument"]
    _check_managed(document)
    now = float(int(ctx.clock.now()))
    data = {"arn": names.iam_arn(ctx.account, "policy", path, name), "description": p.get("Description"),
            "tags": _tags(p), "default": "v1", "next": 2, "updated": now, "attached": [],
            "versions": {"v1": {"document": document, "created": now}}}
    policy = Entity(ctx.account, POLICY_KIND, name, names.unique_id(names.POLICY_ID), path, now, data)
    await _insert(ctx, policy, POLICIES_PER_ACCOUNT,
                  f"A policy called {name} already exists. Duplicate names are not allowed.", "ManagedPoliciesPerAccount")
    return {"Policy": _policy_out(policy)}


async def get_policy(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    return {"Policy": _policy_out(await _policy(ctx, p["PolicyArn"]))}


async def list_policies(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("Scope") == "AWS":  # Signalite has no AWS-managed policies
        return {"Policies": [], "IsTruncated": False}
    usage = p.get("PolicyUsageFilter")
    only_attached = p.get("OnlyAttached", False)

    def keep(policy: Entity) -> bool:
        if usage == "PermissionsBoundary":
            return False
        return not only_attached or bool(policy.data["attached"])

    return await _store_page(ctx, POLICY_KIND, p, "Policies", lambda e: _policy_out(e, with_details=False), keep)


async def delete_policy(ctx: OpContext, p: dict[str, Any]) -> None:
    for _ in range(MAX_TRIES):
        policy = await _policy(ctx, p["PolicyArn"])
        if policy.data["attached"]:
            raise _conflict("Cannot delete a policy attached to entities.")
        if len(policy.data["versions"]) > 1:
            raise _conflict("This policy has more than one version. Before you delete a policy, you must delete "
                            "the policy's versions. The default version is deleted with the policy.")
        if await ctx.store.delete_entity(policy):
            return None
    raise ServiceError("ConcurrentModification", "The policy changed while it was being deleted; try again.")


def _version_out(policy: Entity, version_id: str, with_document: bool) -> dict[str, Any]:
    version = policy.data["versions"][version_id]
    out = {"VersionId": version_id, "IsDefaultVersion": version_id == policy.data["default"],
           "CreateDate": version["created"]}
    if with_document:
        out["Document"] = documents.encoded(version["document"])
    return out


def _no_version(arn: str, version_id: str) -> ServiceError:
    return no_such(f"Policy {arn} version {version_id} does not exist or is not attachable.")


async def get_policy_version(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    policy = await _policy(ctx, p["PolicyArn"])
    if p["VersionId"] not in policy.data["versions"]:
        raise _no_version(p["PolicyArn"], p["VersionId"])
    return {"PolicyVersion": _version_out(policy, p["VersionId"], with_document=True)}


async def create_policy_version(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    arn, document = p["PolicyArn"], p["PolicyDocument"]
    _check_managed(document)
    now = float(int(ctx.clock.now()))
    made: list[str] = []

    def add(current: Entity) -> dict[str, Any]:
        if len(current.data["versions"]) >= VERSIONS_PER_POLICY:
            raise _limit(f"A managed policy can have up to {VERSIONS_PER_POLICY} versions. Before you create a new "
                         "version, you must delete an existing version.")
        data = _copy(current.data)
        version_id = f"v{data['next']}"
        data["next"] += 1
        data["versions"][version_id] = {"document": document, "created": now}
        if p.get("SetAsDefault"):
            data["default"], data["updated"] = version_id, now
        made[:] = [version_id]
        return data

    policy = await _modify(ctx, lambda: _policy(ctx, arn), add)
    return {"PolicyVersion": _version_out(policy, made[0], with_document=False)}


async def set_default_policy_version(ctx: OpContext, p: dict[str, Any]) -> None:
    arn, version_id = p["PolicyArn"], p["VersionId"]
    now = float(int(ctx.clock.now()))

    def set_default(current: Entity) -> dict[str, Any] | None:
        if version_id not in current.data["versions"]:
            raise _no_version(arn, version_id)
        if current.data["default"] == version_id:
            return None
        return {**current.data, "default": version_id, "updated": now}

    await _modify(ctx, lambda: _policy(ctx, arn), set_default)


async def list_policy_versions(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    policy = await _policy(ctx, p["PolicyArn"])
    newest_first = sorted(policy.data["versions"], key=lambda v: int(v[1:].split(".")[0]), reverse=True)
    versions = [_version_out(policy, v, with_document=False) for v in newest_first]
    page = _list_page(p, "Versions", list(range(len(versions))), key=lambda i: f"{i:06d}")
    page["Versions"] = [versions[i] for i in page["Versions"]]
    return page


async def delete_policy_version(ctx: OpContext, p: dict[str, Any]) -> None:
    arn, version_id = p["PolicyArn"], p["VersionId"]

    def remove(current: Entity) -> dict[str, Any]:
        if version_id not in current.data["versions"]:
            raise _no_version(arn, version_id)
        if current.data["default"] == version_id:
            raise _conflict("Cannot delete the default version of a policy.")
        data = _copy(current.data)
        del data["versions"][version_id]
        return data

    await _modify(ctx, lambda: _policy(ctx, arn), remove)


# --- attached policies (users and roles) -------------------------------------------------------------

def _attached(kind: str, name_member: str) -> dict[str, Callable[[OpContext, dict[str, Any]], Awaitable[Any]]]:
    """Attach/Detach/ListAttached of managed policies for ``kind`` (``user`` or ``role``)."""
    quota = f"PoliciesPer{kind.capitalize()}"

    async def attach(ctx: OpContext, p: dict[str, Any]) -> None:
        arn = p["PolicyArn"]
        await _policy(ctx, arn)

        def add(current: Entity) -> dict[str, Any] | None:
            if arn in current.data["attached"]:
                return None
            if len(current.data["attached"]) >= MANAGED_PER_ENTITY:
                raise _limit(f"Cannot exceed quota for {quota}: {MANAGED_PER_ENTITY}")
            data = _copy(current.data)
            data["attached"].append(arn)
            return data

        owner = await _modify(ctx, lambda: _entity(ctx, kind, p[name_member]), add)
        ref = f"{kind}:{owner.id}"

        def count(current: Entity) -> dict[str, Any] | None:
            if ref in current.data["attached"]:
                return None
            data = _copy(current.data)
            data["attached"].append(ref)
            return data

        try:
            await _modify(ctx, lambda: _policy(ctx, arn), count)
        except ServiceError:  # the policy went meanwhile: the attachment goes too
            await _detach_from(ctx, owner, arn)
            raise

    async def detach(ctx: OpContext, p: dict[str, Any]) -> None:
        arn = p["PolicyArn"]

        def remove(current: Entity) -> dict[str, Any]:
            if arn not in current.data["attached"]:
                raise no_such(f"Policy {arn} was not found.")
            data = _copy(current.data)
            data["attached"].remove(arn)
            return data

        owner = await _modify(ctx, lambda: _entity(ctx, kind, p[name_member]), remove)
        ref = f"{kind}:{owner.id}"

        def uncount(current: Entity) -> dict[str, Any] | None:
            if ref not in current.data["attached"]:
                return None
            data = _copy(current.data)
            data["attached"].remove(ref)
            return data

        try:
            await _modify(ctx, lambda: _policy(ctx, arn), uncount)
        except ServiceError:
            pass  # the policy is gone: nothing counts the attachment any more

    async def list_attached(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
        owner = await _entity(ctx, kind, p[name_member])
        prefix = p.get("PathPrefix", "/")
        attached = []
        for arn in owner.data["attached"]:
            parsed = names.parse_iam_arn(arn, POLICY_KIND)
            if parsed is not None and parsed.path.startswith(prefix):
                attached.append({"PolicyName": parsed.name, "PolicyArn": arn})
        attached.sort(key=lambda a: a["PolicyName"].lower())
        return _list_page(p, "AttachedPolicies", attached, key=lambda a: a["PolicyName"])

    prefix = kind.capitalize()
    return {f"Attach{prefix}Policy": attach, f"Detach{prefix}Policy": detach,
            f"ListAttached{prefix}Policies": list_attached}


async def _detach_from(ctx: OpContext, owner: Entity, arn: str) -> None:
    def remove(current: Entity) -> dict[str, Any] | None:
        if arn not in current.data["attached"]:
            return None
        data = _copy(current.data)
        data["attached"].remove(arn)
        return data

    try:
        await _modify(ctx, _reread(ctx, owner), remove)
    except ServiceError:
        pass  # the owner went too


# --- roles --------------------------------------------------------------------------------------------

def _role_out(role: Entity, with_details: bool = True) -> dict[str, Any]:
    data = role.data
    out = {"Path": role.path, "RoleName": role.name, "RoleId": role.id, "Arn": data["arn"],
           "CreateDate": role.created, "AssumeRolePolicyDocument": documents.encoded(data["trust"]),
           "MaxSessionDuration": data["max_session"]}
    if data.get("description"):
        out["Description"] = data["description"]
    if with_details and data.get("tags"):
        out["Tags"] = data["tags"]
    return out


def _check_trust(document: str) -> None:
    validate_document(document, documents.TRUST)
    if documents.size(document) > TRUST_SIZE:
        raise _limit(f"Cannot exceed quota for ACLSizePerRole: {TRUST_SIZE}")


async def create_role(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    _no_boundary(p)
    name, path, trust = p["RoleName"], p.get("Path", "/"), p["AssumeRolePolicyDocument"]
    _check_trust(trust)
    data = {"arn": names.iam_arn(ctx.account, "role", path, name), "trust": trust,
            "description": p.get("Description"), "max_session": p.get("MaxSessionDuration", 3600),
            "tags": _tags(p), "policies": {}, "attached": []}
    role = Entity(ctx.account, ROLE_KIND, name, names.unique_id(names.ROLE_ID), path,
                  float(int(ctx.clock.now())), data)
    await _insert(ctx, role, ROLES_PER_ACCOUNT, f"Role with name {name} already exists.", "RolesPerAccount")
    return {"Role": _role_out(role)}


async def get_role(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    return {"Role": _role_out(await _entity(ctx, ROLE_KIND, p["RoleName"]))}


async def list_roles(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    return await _store_page(ctx, ROLE_KIND, p, "Roles", lambda r: _role_out(r, with_details=False))


async def update_assume_role_policy(ctx: OpContext, p: dict[str, Any]) -> None:
    trust = p["PolicyDocument"]
    _check_trust(trust)
    await _modify(ctx, lambda: _entity(ctx, ROLE_KIND, p["RoleName"]),
                  lambda current: {**current.data, "trust": trust})


async def delete_role(ctx: OpContext, p: dict[str, Any]) -> None:
    for _ in range(MAX_TRIES):
        role = await _entity(ctx, ROLE_KIND, p["RoleName"])
        if role.data["policies"]:
            raise _conflict("Cannot delete entity, must delete policies first.")
        if role.data["attached"]:
            raise _conflict("Cannot delete entity, must detach all policies first.")
        if await ctx.store.delete_entity(role):
            return None
    raise ServiceError("ConcurrentModification", "The role changed while it was being deleted; try again.")


OPERATIONS: dict[str, Callable[[OpContext, dict[str, Any]], Awaitable[Any]]] = {
    "CreateUser": create_user, "GetUser": get_user, "ListUsers": list_users, "DeleteUser": delete_user,
    "CreateAccessKey": create_access_key, "ListAccessKeys": list_access_keys,
    "UpdateAccessKey": update_access_key, "DeleteAccessKey": delete_access_key,
    **_inline(USER_KIND, "UserName"), **_inline(ROLE_KIND, "RoleName"),
    "CreatePolicy": create_policy, "GetPolicy": get_policy, "ListPolicies": list_policies,
    "DeletePolicy": delete_policy, "GetPolicyVersion": get_policy_version,
    "CreatePolicyVersion": create_policy_version, "SetDefaultPolicyVersion": set_default_policy_version,
    "ListPolicyVersions": list_policy_versions, "DeletePolicyVersion": delete_policy_version,
    **_attached(USER_KIND, "UserName"), **_attached(ROLE_KIND, "RoleName"),
    "CreateRole": create_role, "GetRole": get_role, "ListRoles": list_roles, "DeleteRole": delete_role,
    "UpdateAssumeRolePolicy": update_assume_role_policy,
}
