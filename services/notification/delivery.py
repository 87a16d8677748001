"""Handing messages over: configuration, e-mail over SMTP, signed webhooks over HTTP,
the callback allow-list policy, member secrets and signed acknowledgement links.

Nothing secret is stored in events: a webhook secret is derived from the suite's secret
key and a per-member (or per-subscription) salt, returned once at creation, and derived
again at send time.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import ipaddress
import smtplib
import socket
import ssl
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter

from services.notification.domain import ACK_LINK_PLACEHOLDER
from services.notification.signature import DELIVERY_HEADER, signature_headers
from shared.config import ConfigError, seconds, whole_number

SECURITY = ("none", "starttls", "tls")


class SendError(Exception):
    """A delivery attempt failed; ``permanent`` ones are not retried."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class CallbackRefused(ValueError):
    """A callback address the allow-list policy refuses."""


# --- configuration ------------------------------------------------------------------------

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
    # The scheduler's and dispatcher's fallback poll (s): they wake when the log gets new
    # events and when the next item falls due; this bounds a lost wake-up's delay.
    tick: float = 1.0

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
        base = seconds(env, "SLA_DELIVERY_BACKOFF_BASE", 2.0, 0.01, 3600)
        cap = seconds(env, "SLA_DELIVERY_BACKOFF_CAP", 600.0, 0.01, 86400)
        if cap < base:
            raise ConfigError("SLA_DELIVERY_BACKOFF_CAP", "must not be below "
                                                          "SLA_DELIVERY_BACKOFF_BASE")
        return cls(
            smtp_host=host,
            smtp_port=whole_number(env, "SLA_SMTP_PORT", default_port, 1, 65535),
            smtp_security=security, smtp_user=user, smtp_password=password,
            smtp_from=sender,
            smtp_timeout=seconds(env, "SLA_SMTP_TIMEOUT", 10.0, 0.1, 300),
            allow_networks=networks, allow_hosts=hosts,
            webhook_timeout=seconds(env, "SLA_WEBHOOK_TIMEOUT", 5.0, 0.1, 120),
            public_url=public,
            max_attempts=whole_number(env, "SLA_DELIVERY_MAX_ATTEMPTS", 8, 1, 100),
            backoff_base=base, backoff_cap=cap,
            concurrency=whole_number(env, "SLA_DELIVERY_CONCURRENCY", 8, 1, 256),
            ack_ttl=whole_number(env, "SLA_ACK_TOKEN_TTL", 7 * 86400, 60, 90 * 86400),
            tick=seconds(env, "SLA_NOTIFICATION_TICK", 1.0, 0.01, 60),
        )


# --- the callback allow-list --------------------------------------------------------------

CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Not globally reachable in the IANA special-purpose registries, whichever Python's own
# tables (which differ between versions) say.
SPECIAL = tuple(ipaddress.ip_network(n) for n in (
    "192.0.0.0/24", "192.88.99.0/24", "3fff::/20", "5f00::/16"))
GLOBAL_EXCEPTIONS = tuple(ipaddress.ip_address(a) for a in ("192.0.0.9", "192.0.0.10"))


def _not_global(ip: Address) -> str | None:
    """Why an address is not globally routable (None when it is)."""
    checks = (("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback),
              ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
              ("shared address space (CGNAT)", ip.version == 4 and ip in CGNAT),
              ("private", ip.is_private), ("reserved", ip.is_reserved),
              ("special-purpose", ip not in GLOBAL_EXCEPTIONS and any(
                  ip.version == net.version and ip in net for net in SPECIAL)),
              ("not globally routable", not ip.is_global))
    return next((why for why, hit in checks if hit), None)


def _embedded(ip: Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address carries (6to4, NAT64, Teredo)."""
    if ip.version != 6:
        return []
    forms: list[tuple[str, ipaddress.IPv4Address]] = []
    if ip.sixtofour is not None:
        forms.append(("6to4", ip.sixtofour))
    if any(ip in net for net in NAT64):
        forms.append(("NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    if ip.teredo is not None:
        server, client = ip.teredo
        forms += [("Teredo", client), ("Teredo server", server)]
    return forms


def _refusal(ip: Address, allowed: tuple[Any, ...]) -> str | None:
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        inner = _refusal(mapped, allowed)
        return None if inner is None else f"IPv4-mapped form of {mapped}, {inner}"
    for form, inner_ip in _embedded(ip):
        # NAT64 reaches the IPv4 address itself; a tunnel (6to4, Teredo) must not carry
        # one that is not global, allow-listed or not (allow the IPv6 address instead).
        inner = _refusal(inner_ip, allowed if form == "NAT64" else ())
        if inner is not None:
            return f"{form} form of {inner_ip}, {inner}"
        if form == "NAT64":
            return None
    return _not_global(ip)


def address_refusal(ip: Address, allowed: Iterable[Any] = ()) -> str | None:
    """Why a callback must not be sent to this address (None when it may), e.g.
    ``2002:7f00:1:: (6to4 form of 127.0.0.1, loopback)``.

    Allowed: an address inside an ``SLA_WEBHOOK_ALLOW`` network, or a globally routable
    one. An IPv4-mapped or NAT64 address is judged by the IPv4 address it reaches; a
    6to4 or Teredo address must carry only globally routable IPv4 addresses too."""
    why = _refusal(ip, tuple(allowed))
    return None if why is None else f"{ip} ({why})"


@dataclass(frozen=True)
class Callback:
    """A callback URL that passed the policy: where to connect (``addresses``, empty
    when the host is allow-listed by name and resolved at connect time)."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[Address, ...] = ()

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"http": 80, "https": 443}[self.scheme]
        return host if self.port == default else f"{host}:{self.port}"


def check_callback(url: str, config: NotificationConfig, resolve: bool = True) -> Callback:
    """Refuse a callback that is not http(s), carries credentials, has an invalid port,
    or points (by name or by any address its name resolves to) at an address that is not
    globally routable, unless ``SLA_WEBHOOK_ALLOW`` names the host or its network.

    Raises :class:`CallbackRefused` with the reason."""
    try:
        parsed = urlparse(url)
        parsed.hostname  # noqa: B018 - a bad [IPv6] literal raises here (ports: below)
    except ValueError as exc:
        raise CallbackRefused(f"the callback is not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise CallbackRefused("the callback must be an http or https URL with a host")
    if parsed.username or parsed.password:
        raise CallbackRefused("the callback must not carry credentials")
    if parsed.fragment:
        raise CallbackRefused("the callback must not have a fragment")
    try:
        port = parsed.port
    except ValueError:
        port = 0
    if port is not None and not 1 <= port <= 65535:
        raise CallbackRefused("the callback port must be a number from 1 to 65535")
    port = port or {"http": 80, "https": 443}[parsed.scheme]
    host = parsed.hostname.lower().rstrip(".")
    callback = Callback(url=url, scheme=parsed.scheme, host=host, port=port)
    if host in config.allow_hosts:
        return callback
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            addresses = [ipaddress.ip_address("127.0.0.1")]
        elif not resolve:
            return callback
        else:
            try:
                infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
            except (socket.gaierror, UnicodeError, OSError) as exc:
                raise CallbackRefused(f"the callback host {host!r} does not resolve "
                                      f"({exc})") from None
            addresses = list(dict.fromkeys(
                ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    for ip in addresses:
        why = address_refusal(ip, config.allow_networks)
        if why is not None:
            raise CallbackRefused(f"the callback resolves to {why}: not a globally "
                                  "routable address, and SLA_WEBHOOK_ALLOW does not allow it")
    return dataclasses.replace(callback, addresses=tuple(addresses))


class _PinnedAdapter(HTTPAdapter):
    """Connects to the address the policy checked, not to whatever the host name
    resolves to when the connection opens (no DNS rebinding between check and send).
    The Host header, TLS server name and certificate check keep the callback's name."""

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: Any,
                                        proxies: Any = None, cert: Any = None) -> Any:
        pinned = getattr(request, "pinned_address", None)
        if pinned is None:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify,
                                                                             cert)
        name = host_params["host"]
        host_params["host"] = pinned
        if host_params["scheme"] == "https":
            pool_kwargs = {**pool_kwargs, "server_hostname": name, "assert_hostname": name}
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)


def webhook_session() -> requests.Session:
    """A session for webhook deliveries: connections pinned to checked addresses, no
    proxies or credentials from the environment."""
    session = requests.Session()
    session.trust_env = False
    adapter = _PinnedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.pinned = True  # type: ignore[attr-defined]
    return session


# --- secrets and signatures ---------------------------------------------------------------

def derive_secret(server_key: str, kind: str, owner_id: str, salt: str) -> str:
    """The webhook secret of a member or subscription (never stored)."""
    digest = hmac.new(server_key.encode(), f"webhook-secret:{kind}:{owner_id}:{salt}".encode(),
                      hashlib.sha256).hexdigest()
    return "whsec_" + digest


# --- acknowledgement links ----------------------------------------------------------------
#
# A link token is derived, like a webhook secret, from the suite's secret key and facts
# the delivery records (its id, a random link id, the incident, the recipient, the
# expiry): it is computed when the message is handed over and never stored. The
# delivery records only its SHA-256 digest, so whoever can read deliveries or the audit
# log sees neither the token nor enough to make one.

def ack_placeholder(link_id: str) -> str:
    """What stands for a link in the stored content (replaced when the message is sent)."""
    return f"{ACK_LINK_PLACEHOLDER}{link_id}"


def ack_link_token(server_key: str, delivery_id: str, link_id: str, incident_id: str,
                   recipient: str, expires_at: datetime) -> str:
    """``<delivery id>.<link id>.<MAC>``: single-purpose (its own MAC label), bound to
    one incident, one recipient and one expiry."""
    facts = f"ack-link:v2:{delivery_id}:{link_id}:{incident_id}:{recipient}:" \
            f"{int(expires_at.timestamp())}"
    mac = hmac.new(server_key.encode(), facts.encode(), hashlib.sha256).digest()
    return f"{delivery_id}.{link_id}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_ack_link_token(token: str) -> tuple[str, str]:
    """(delivery id, link id) named by a link token; ``ValueError`` when malformed."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise ValueError("the acknowledgement link is not valid")
    try:
        delivery_id = str(uuid.UUID(parts[0]))
    except ValueError:
        raise ValueError("the acknowledgement link is not valid") from None
    return delivery_id, parts[1]


def digest_matches(token: str, digest: str) -> bool:
    return hmac.compare_digest(token_digest(token), str(digest))


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
    """POST one signed body; 2xx is success, 4xx (but 408/429) permanent, else retried.

    The callback is checked again now, on the addresses its name resolves to, and the
    connection goes to an address that passed (redirects are not followed)."""
    try:
        callback = check_callback(url, config)
    except CallbackRefused as exc:
        raise SendError(str(exc), permanent=True) from None
    if session is None or not getattr(session, "pinned", False):
        session = webhook_session()
    headers = {"Content-Type": "application/json",
               "User-Agent": "sla-support-suite-notification/1",
               **signature_headers(secret, delivery_id, event_type, body)}
    targets: list[str | None] = [str(ip) for ip in callback.addresses] or [None]
    response = None
    for i, address in enumerate(targets):
        request = requests.Request("POST", url, data=body, headers={
            **headers, "Host": callback.host_header}).prepare()
        request.pinned_address = address  # type: ignore[attr-defined]
        try:
            response = session.send(request, timeout=config.webhook_timeout,
                                    allow_redirects=False)
            break
        except requests.ConnectionError as exc:
            if i + 1 < len(targets):
                continue
            raise SendError(f"{type(exc).__name__}: {exc}"[:500]) from None
        except requests.RequestException as exc:
            raise SendError(f"{type(exc).__name__}: {exc}"[:500]) from None
    assert response is not None
    if 200 <= response.status_code < 300:
        return f"HTTP {response.status_code}"
    permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
    raise SendError(f"HTTP {response.status_code} from the callback", permanent)
