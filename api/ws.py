"""WebSocket /ws/groups/{id}?token=ACCESS: live updates of a group's contributions, for its members only.

The handshake is checked BEFORE the upgrade, so a refusal is a plain HTTP answer in the API's error shape:
401 for a missing, malformed, expired, revoked or non-access token, 404 for a group the caller is no member
of (or that does not exist), 503 when this process cannot reach the live feed. After the upgrade the server
sends a `snapshot` (the group as GET /groups/{id} shows it), then one message per event of that group
(`GroupContributionAdded`, `GroupMemberAdded`, `GroupMemberRemoved`), and `resync` if the feed was interrupted.
The socket is closed with 1008 (policy violation) when the access token expires (reconnect with a fresh one) and
when the caller is no longer a member: right after the `GroupMemberRemoved` naming them (a member who left or was
removed gets nothing more of the group), or when membership, checked again after every `resync` (an interrupted
feed may have missed that event), is gone.

Each open socket holds one gunicorn thread (gthread worker) for its lifetime; see the README.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

from flask import Blueprint, Flask, g, request
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from flask_sock import Sock
from jwt import PyJWTError
from simple_websocket import Server

from api.groups import group_out
from api.security import is_blocklisted
from config import wiring
from config.settings import get_settings
from services import groups
from services.context import Caller
from services.errors import NotFound, Unauthorized, Unavailable
from services.identity import load_caller
from services.live import LiveFeed, feed_for
from services.ratelimit import rate_limits
from services.tokens import PAT_PREFIX

bp = Blueprint("live", __name__)
sock = Sock()

#: How long the first socket of a process waits for the process's feed to be bound.
FEED_READY_SECONDS = 5.0
#: How often a quiet socket checks whether its client left or its token expired.
POLL_SECONDS = 0.5
#: simple-websocket server options: pings keep idle sockets alive through proxies (Heroku closes after 55 s
#: of silence) and find dead clients; clients have nothing to say, so their messages stay small.
SERVER_OPTIONS = {"ping_interval": 25, "max_message_size": 4096}
#: RFC 6455 close code for a policy violation.
POLICY_VIOLATION = 1008


def live_feed() -> LiveFeed:
    """This process's live feed."""
    return feed_for(get_settings().rabbitmq_url)


def _token() -> str:
    token = request.args.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not token:
        raise Unauthorized("authentication required: pass a login's access token as ?token=")
    if token.startswith(PAT_PREFIX):
        raise Unauthorized("live updates take a login's access token, not a personal access token")
    return token


def authenticate_socket() -> tuple[Caller, int]:
    """The caller of a WebSocket handshake and when their access token expires (epoch seconds); Unauthorized
    for anything but a live access token of a live session (revoked ones as for every other request)."""
    try:
        claims = decode_token(_token())
        if claims.get("type") != "access":
            raise Unauthorized("only an access token opens live updates")
        if is_blocklisted(claims["jti"]):
            raise Unauthorized("the token has been revoked")
        caller = load_caller(uuid.UUID(claims["sub"]), None, g.request_id, wiring.uow(),
                             family_id=uuid.UUID(claims["fam"]),
                             issued_at=dt.datetime.fromtimestamp(claims["iat"], dt.UTC))
    except (JWTExtendedException, PyJWTError, KeyError, ValueError, TypeError) as exc:
        raise Unauthorized(f"invalid token: {exc}") from None
    except NotFound:
        raise Unauthorized("the token's user has no household") from None
    return caller, int(claims["exp"])


@bp.before_request
def _admit() -> None:
    """Authenticate, rate-limit and authorize the handshake; make sure this process's feed is listening."""
    caller, expires_at = authenticate_socket()
    rate_limits().hit_token(str(caller.family_id or caller.user_id))
    group_id = (request.view_args or {}).get("group_id")
    if group_id is None:
        raise NotFound("no such group")
    groups.get_group(caller, group_id, wiring.uow())  # members only: 404 for anyone else
    if not live_feed().wait_ready(FEED_READY_SECONDS):
        raise Unavailable("live updates are unavailable right now (the message broker did not answer); retry")
    g.live_caller, g.live_expires_at = caller, expires_at


def _drain(ws: Server) -> None:
    """Read and ignore what the client sends; raises ConnectionClosed once it has gone."""
    while ws.receive(timeout=0) is not None:
        pass


def _snapshot(caller: Caller, group_id: uuid.UUID) -> str | None:
    """The group as GET shows it, or None if the caller is no longer a member (removed since the handshake)."""
    try:
        view = groups.get_group(caller, group_id, wiring.uow())
    except NotFound:
        return None
    return json.dumps({"type": "snapshot", "group": group_out(view)})


def _still_member(text: str, caller: Caller, group_id: uuid.UUID) -> bool:
    """Whether the caller may go on hearing of the group after this message: not once it says they are removed,
    nor after a resync (which may have missed that) when SQL says they are no member any more."""
    message = json.loads(text)
    if message.get("type") == "GroupMemberRemoved":
        return message.get("member_id") != str(caller.user_id)
    if message.get("type") == "resync":
        return _snapshot(caller, group_id) is not None
    return True


def _leave(ws: Server) -> None:
    """Close the socket of someone who is no longer a member."""
    ws.close(reason=POLICY_VIOLATION, message="you are no longer a member of this group")


@sock.route("/ws/groups/<uuid:group_id>", bp=bp)
def group_updates(ws: Server, group_id: uuid.UUID) -> None:
    """Send the group's snapshot, then each of its events as it happens, until the client leaves."""
    caller: Caller = g.live_caller
    expires_at: int = g.live_expires_at
    with live_feed().subscribe(str(group_id)) as subscription:
        # Subscribed first, read second: whatever commits after the snapshot (a removal too) arrives as an event.
        if (snapshot := _snapshot(caller, group_id)) is None:
            _leave(ws)
            return
        ws.send(snapshot)
        while True:
            if time.time() >= expires_at:
                ws.close(reason=POLICY_VIOLATION, message="the access token expired; reconnect with a fresh one")
                return
            text = subscription.get(POLL_SECONDS)
            if text is not None:
                ws.send(text)
                if not _still_member(text, caller, group_id):
                    _leave(ws)
                    return
            _drain(ws)


def install(app: Flask) -> None:
    """Serve the WebSocket routes."""
    app.config.setdefault("SOCK_SERVER_OPTIONS", dict(SERVER_OPTIONS))
    app.register_blueprint(bp)
