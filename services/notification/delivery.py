"""Handing messages over: configuration, e-mail over SMTP, signed webhooks over HTTP,
the callback allow-list policy, member secrets and signed acknowledgement links.

Nothing secret is stored in events: a webhook secret is derived from the suite's secret
key and a per-member (or per-subscription) salt, returned once at creation, and derived
again at send time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import smtplib
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any
from urllib.parse import urlparse

import jwt
import requests

from shared.config import ConfigError

SECURITY = ("none", "starttls", "tls")
SIGNATURE_HEADER = "X-SLA-Signature"
DELIVERY_HEADER = "X-SLA-Delivery-Id"
EVENT_HEADER = "X-SLA-Event-Type"
ACK_AUDIENCE = "sla-notification-ack"
ACK_ISSUER = "sla-support-suite/notification"


class SendError(Exception):
    """A delivery attempt failed; ``permanent`` ones are not retried."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class CallbackRefused(ValueError):
    """A callback address the allow-list policy refuses."""


# --- configuration ------------------------------------------------------------------------

def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"expected a whole number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(name, f"must be between {minimum} and {maximum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float,
           maximum: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"expected seconds as a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(name, f"must be between {minimum} and {maximum}, got {value}")
    return value


def parse_allow(raw: str | None) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    """``SLA_WEBHOOK_ALLOW``: comma-separated CIDRs (or addresses) and host names."""
    networks: list[Any] = []
    hosts: list[str] = []
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
            continue
        except ValueError:
            pass
        label = item.lower().rstrip(".")
        if not label or not all(part and all(c.isalnum() or c == "-" for c in part)
                                for part in label.split(".")):
            raise ConfigError("SLA_WEBHOOK_ALLOW", f"{item!r} is neither a CIDR nor a host name")
        hosts.append(label)
    return tuple(networks), tuple(hosts)


@dataclass(frozen=True)
class NotificationConfig:
    """The notification service's own settings, from the environment (the README lists them)."""

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_security: str = "none"
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str = "sla-suite@localhost"
    smtp_timeout: float = 10.0
    allow_networks: tuple[Any, ...] = ()
    allow_hosts: tuple[str, ...] = ()
    webhook_timeout: float = 5.0
    public_url: str = "http://localhost:8080"
    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_cap: float = 600.0
    concurrency: int = 8
    ack_ttl: int = 7 * 86400
    tick: float = 0.1

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> NotificationConfig:
        security = (env.get("SLA_SMTP_SECURITY") or "none").strip().lower()
        if security not in SECURITY:
            raise ConfigError("SLA_SMTP_SECURITY", f"expected one of {', '.join(SECURITY)}, "
                                                   f"got {security!r}")
        default_port = {"none": 25, "starttls": 587, "tls": 465}[security]
        user, password = env.get("SLA_SMTP_USER") or None, env.get("SLA_SMTP_PASSWORD") or None
        if bool(user) != bool(password):
            raise ConfigError("SLA_SMTP_PASSWORD" if user else "SLA_SMTP_USER",
                              "SLA_SMTP_USER and SLA_SMTP_PASSWORD go together")
        if user and security == "none":
            raise ConfigError("SLA_SMTP_SECURITY", "credentials are only sent over starttls "
                                                   "or tls")
        sender = (env.get("SLA_SMTP_FROM") or "sla-suite@localhost").strip()
        if "@" not in sender or any(c.isspace() for c in sender):
            raise ConfigError("SLA_SMTP_FROM", f"expected an e-mail address, got {sender!r}")
        host = (env.get("SLA_SMTP_HOST") or "").strip() or None
        public = (env.get("SLA_PUBLIC_URL") or "http://localhost:8080").strip().rstrip("/")
        parsed = urlparse(public)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError("SLA_PUBLIC_URL", f"expected an http(s) URL, got {public!r}")
        networks, hosts = parse_allow(env.get("SLA_WEBHOOK_ALLOW"))
        base = _float(env, "SLA_DELIVERY_BACKOFF_BASE", 2.0, 0.01, 3600)
        cap = _float(env, "SLA_DELIVERY_BACKOFF_CAP", 600.0, 0.01, 86400)
        if cap < base:
            raise ConfigError("SLA_DELIVERY_BACKOFF_CAP", "must not be below "
                                                          "SLA_DELIVERY_BACKOFF_BASE")
        return cls(
            smtp_host=host,
            smtp_port=_int(env, "SLA_SMTP_PORT", default_port, 1, 65535),
            smtp_security=security, smtp_user=user, smtp_password=password,
            smtp_from=sender,
            smtp_timeout=_float(env, "SLA_SMTP_TIMEOUT", 10.0, 0.1, 300),
            allow_networks=networks, allow_hosts=hosts,
            webhook_timeout=_float(env, "SLA_WEBHOOK_TIMEOUT", 5.0, 0.1, 120),
            public_url=public,
            max_attempts=_int(env, "SLA_DELIVERY_MAX_ATTEMPTS", 8, 1, 100),
            backoff_base=base, backoff_cap=cap,
            concurrency=_int(env, "SLA_DELIVERY_CONCURRENCY", 8, 1, 256),
            ack_ttl=_int(env, "SLA_ACK_TOKEN_TTL", 7 * 86400, 60, 90 * 86400),
            tick=_float(env, "SLA_NOTIFICATION_TICK", 0.1, 0.01, 10),
        )


# --- the callback allow-list --------------------------------------------------------------

def _restricted(ip: Any) -> bool:
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified
            or (getattr(ip, "ipv4_mapped", None) is not None and _restricted(ip.ipv4_mapped)))


def check_callback(url: str, config: NotificationConfig, resolve: bool = True) -> None:
    """Refuse a callback that is not http(s), carries credentials, or points (by name or
    by any address its name resolves to) at loopback, private, link-local or other
    reserved ranges, unless ``SLA_WEBHOOK_ALLOW`` names the host or its network."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise CallbackRefused("the callback must be an http or https URL with a host")
    if parsed.username or parsed.password:
        raise CallbackRefused("the callback must not carry credentials")
    if parsed.fragment:
        raise CallbackRefused("the callback must not have a fragment")
    host = parsed.hostname.lower().rstrip(".")
    if host in config.allow_hosts:
        return
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            addresses = [ipaddress.ip_address("127.0.0.1")]
        elif not resolve:
            return
        else:
            try:
                infos = socket.getaddrinfo(host, parsed.port or 443, proto=socket.IPPROTO_TCP)
            except (socket.gaierror, UnicodeError) as exc:
                raise CallbackRefused(f"the callback host {host!r} does not resolve "
                                      f"({exc})") from None
            addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for ip in addresses:
        if _restricted(ip) and not any(ip in net for net in config.allow_networks
                                       if net.version == ip.version):
            raise CallbackRefused(f"the callback resolves to {ip}, a loopback, private or "
                                  "reserved address not allowed by SLA_WEBHOOK_ALLOW")


# --- secrets and signatures ---------------------------------------------------------------

def derive_secret(server_key: str, kind: str, owner_id: str, salt: str) -> str:
    """The webhook secret of a member or subscription (never stored)."""
    digest = hmac.new(server_key.encode(), f"webhook-secret:{kind}:{owner_id}:{salt}".encode(),
                      hashlib.sha256).hexdigest()
    return "whsec_" + digest


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "<t>." + body>`` (Stripe-style replay protection)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(secret: str, header: str | None, body: bytes, now: float | None = None,
                     tolerance: float = 300) -> bool:
    """What a receiver does: the signature matches and is no older than ``tolerance``."""
    if not header:
        return False
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError, IndexError):
        return False
    current = time.time() if now is None else now
    if abs(current - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for v in parts.get("v1", []))


# --- acknowledgement links ----------------------------------------------------------------

def ack_token(server_key: str, incident_id: str, recipient: str, now: datetime,
              ttl: int) -> str:
    payload = {"iss": ACK_ISSUER, "aud": ACK_AUDIENCE, "sub": incident_id, "by": recipient,
               "iat": now, "exp": now + timedelta(seconds=ttl)}
    return jwt.encode(payload, server_key, algorithm="HS256")


def read_ack_token(server_key: str, token: str, now: datetime) -> tuple[str, str]:
    """(incident id, recipient) of a valid link token; ``ValueError`` otherwise.

    Signature, algorithm, audience and issuer are checked by PyJWT; expiry against the
    application's clock (the one that issued it)."""
    try:
        claims = jwt.decode(token, server_key, algorithms=["HS256"], audience=ACK_AUDIENCE,
                            issuer=ACK_ISSUER, options={"require": ["exp", "sub", "aud"],
                                                        "verify_exp": False,
                                                        "verify_iat": False})
    except jwt.PyJWTError as exc:
        raise ValueError(f"the acknowledgement link is not valid ({exc})") from None
    try:
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("the acknowledgement link is not valid (bad exp)") from None
    if expires <= now:
        raise ValueError("the acknowledgement link has expired")
    return str(claims["sub"]), str(claims.get("by") or "link")


# --- senders ------------------------------------------------------------------------------

def send_email(config: NotificationConfig, delivery_id: str, to: str, content: Mapping[str, Any]
               ) -> str:
    """Send one e-mail; the SMTP server's answer, or :class:`SendError`."""
    if not config.smtp_host:
        raise SendError("no SMTP server configured (SLA_SMTP_HOST)")
    message = EmailMessage()
    message["From"] = formataddr(("SLA Support Suite", config.smtp_from))
    message["To"] = to
    message["Subject"] = str(content.get("subject") or "SLA notification")
    message["Message-ID"] = make_msgid(idstring=delivery_id, domain="sla-suite")
    message[DELIVERY_HEADER] = delivery_id
    message.set_content(str(content.get("text") or ""))
    if content.get("html"):
        message.add_alternative(str(content["html"]), subtype="html")
    try:
        if config.smtp_security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(config.smtp_host, config.smtp_port,
                                                  timeout=config.smtp_timeout,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.smtp_timeout)
        with smtp:
            if config.smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if config.smtp_user:
                smtp.login(config.smtp_user, config.smtp_password or "")
            refused = smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendError(f"recipient refused: {exc.recipients}", permanent=True) from None
    except smtplib.SMTPResponseException as exc:
        permanent = 500 <= exc.smtp_code < 600
        raise SendError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(f"SMTP failure: {type(exc).__name__}: {exc}") from None
    if refused:
        raise SendError(f"recipient refused: {refused}", permanent=True)
    return f"accepted by {config.smtp_host}:{config.smtp_port}"


def send_webhook(config: NotificationConfig, delivery_id: str, url: str, body: bytes,
                 secret: str, event_type: str, session: requests.Session | None = None) -> str:
    """POST one signed body; 2xx is success, 4xx (but 408/429) permanent, else retried."""
    try:
        check_callback(url, config)
    except CallbackRefused as exc:
        raise SendError(str(exc), permanent=True) from None
    headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery_id,
               SIGNATURE_HEADER: sign(secret, body), EVENT_HEADER: event_type,
               "User-Agent": "sla-support-suite-notification/1"}
    try:
        response = (session or requests).post(url, data=body, headers=headers,
                                              timeout=config.webhook_timeout,
                                              allow_redirects=False)
    except requests.RequestException as exc:
        raise SendError(f"{type(exc).__name__}: {exc}"[:500]) from None
    if 200 <= response.status_code < 300:
        return f"HTTP {response.status_code}"
    permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
    raise SendError(f"HTTP {response.status_code} from the callback", permanent)
