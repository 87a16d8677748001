"""Pure rules of the notification service: topics, severity floor, hub queries, grouping,
inhibition, suppression, backoff, signatures, the callback allow-list, configuration."""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime, timedelta

import pytest

from services.notification import delivery as d
from services.notification import domain as dom
from services.notification import routing, sending
from services.notification import signature as sig
from services.notification.rendering import render
from shared.config import ConfigError
from shared.errors import InvalidTransition

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def labels(**over: object) -> dict:
    base = {"eventType": "ThresholdCrossingEvent", "alertId": "cr-1", "level": "breached",
            "severity": "major", "regimeId": "rg", "parameter": "availability",
            "scopeType": "purchasedOffering", "scopeId": "p1", "offeringGroupId": "g1",
            "offeringId": "o1", "customerId": "acme"}
    base.update(over)
    return base


@pytest.mark.parametrize(("topic", "expected"), [
    ({"eventTypes": ["ThresholdCrossingEvent"]}, True),
    ({"eventTypes": ["Threshold*"]}, True),
    ({"eventTypes": ["*Alert*"]}, False),
    ({"eventTypes": ["*"], "minSeverity": "major"}, True),
    ({"eventTypes": ["*"], "minSeverity": "critical"}, False),
    ({"offeringGroupIds": ["g1", "g2"]}, True),
    ({"offeringGroupIds": ["g2"]}, False),
    ({"customerIds": ["acme"], "offeringIds": ["o1"]}, True),
    ({"customerIds": ["other"]}, False),
])
def test_topic_matching_with_wildcards_floor_and_filters(topic: dict, expected: bool) -> None:
    assert routing.topic_matches(topic, labels()) is expected


def test_severity_floor_can_be_ignored_for_clears() -> None:
    clear = labels(level="cleared", severity="info")
    assert not routing.topic_matches({"minSeverity": "major"}, clear)
    assert routing.topic_matches({"minSeverity": "major"}, clear, ignore_floor=True)


def test_severity_scale_is_pinned() -> None:
    assert dom.severity_of("ThresholdCrossingEvent", "warning") == "warning"
    assert dom.severity_of("ThresholdCrossingEvent", "breached") == "major"
    assert dom.severity_of("ThresholdCrossingEvent", "cleared") == "info"
    assert dom.severity_of("BurnRateAlertEvent", "page", "page") == "critical"
    assert dom.severity_of("BurnRateAlertEvent", "ticket", "ticket") == "minor"
    assert dom.severity_of("PlannedOutageChangeEvent", "agreed") == "info"


def test_a_list_serves_its_customers_or_groups_and_internal_lists_serve_all() -> None:
    assert routing.serves([], [], labels())
    assert routing.serves(["acme"], [], labels())
    assert not routing.serves(["other"], [], labels())
    assert routing.serves(["other"], ["g1"], labels())


def test_hub_query_parsing_and_matching() -> None:
    filters = routing.parse_hub_query("eventType=Threshold*&severity=major&offeringGroupId=g1,g2")
    assert routing.hub_matches(filters, labels())
    assert not routing.hub_matches(filters, labels(severity="warning"))
    assert not routing.hub_matches(filters, labels(offeringGroupId="g3"))
    assert routing.hub_matches({}, labels())
    for bad in ("colour=red", "severity=apocalyptic", "eventType", "eventType="):
        with pytest.raises(ValueError):
            routing.parse_hub_query(bad)


def test_listener_path_is_lower_camel() -> None:
    assert routing.listener_name("ThresholdCrossingEvent") == "thresholdCrossingEvent"


def test_grouping_decisions() -> None:
    # First alert of a group: wait group_wait for companions.
    assert routing.next_flush(T0, None, None, 30, 300) == (T0 + timedelta(seconds=30), "queued")
    # A flush is already planned: ride along.
    planned = T0 + timedelta(seconds=10)
    assert routing.next_flush(T0, planned, None, 30, 300) == (planned, "grouped")
    # Sent recently: wait for the end of the group interval.
    last = T0 - timedelta(seconds=100)
    assert routing.next_flush(T0, None, last, 30, 300) == (last + timedelta(seconds=300), "grouped")
    # Sent long ago: a new round.
    old = T0 - timedelta(seconds=301)
    assert routing.next_flush(T0, None, old, 30, 300)[1] == "queued"
    assert routing.group_key(["offeringGroupId", "parameter"], labels()) == \
        "offeringGroupId=g1|parameter=availability"


def test_a_breach_inhibits_the_warning_of_its_own_series_only() -> None:
    breach = labels()
    assert routing.inhibiting(labels(alertId="cr-2", level="warning", severity="warning"),
                          [breach]) == "cr-1"
    assert routing.inhibiting(labels(alertId="cr-3", level="warning", scopeId="p2"),
                          [breach]) is None
    assert routing.inhibiting(labels(alertId="cr-4"), [breach]) is None  # breaches never are


def test_a_group_drops_a_pending_warning_when_its_breach_arrives() -> None:
    group = dom.AlertGroup(list_id="l", key="k")
    group.queue(labels(alertId="w", level="warning", severity="warning"), T0)
    group.queue(labels(alertId="b"), T0)
    assert [a["alertId"] for a in group.pending] == ["b"]
    alerts = group.flush(T0, "first", 3600)
    assert [a["alertId"] for a in alerts] == ["b"] and group.repeat_at == T0 + timedelta(hours=1)
    assert group.flush(T0, "repeat", 3600, acknowledged=["b"]) == []


def test_suppression_during_an_agreed_outage_for_its_scope() -> None:
    outage = {"id": "po-1", "status": "agreed", "start": "2026-03-02T08:00:00Z",
              "end": "2026-03-02T10:00:00Z", "offeringGroupId": "g1",
              "affectedPurchasedOfferingIds": ["p9"]}
    assert routing.suppressing(labels(), T0, [outage]) == "po-1"
    assert routing.suppressing(labels(offeringGroupId="g2", scopeId="p9"), T0, [outage]) == "po-1"
    assert routing.suppressing(labels(offeringGroupId="g2"), T0, [outage]) is None
    assert routing.suppressing(labels(), T0 + timedelta(hours=2), [outage]) is None
    assert routing.suppressing(labels(), T0, [{**outage, "status": "cancelled"}]) is None


def test_backoff_is_exponential_jittered_and_bounded() -> None:
    rng = random.Random(7)
    for attempt in range(1, 30):
        delay = sending.backoff_delay(attempt, 2, 600, rng)
        ceiling = min(600, 2 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling <= 600
    assert len({sending.backoff_delay(3, 2, 600) for _ in range(20)}) > 1  # jitter


def test_delivery_gives_up_after_its_attempts_and_can_be_retried_by_hand() -> None:
    delivery = dom.Delivery(message_id="m", channel="webhook", address="http://x/",
                            recipient="x", target_kind="hub", target_id="h", member_id=None,
                            event_ids=["e"], alert_ids=["a"], correlation_ids=[],
                            event_type="ThresholdCrossingEvent", reason="hub", content={},
                            max_attempts=2, due_at=T0, ack_links=[])
    delivery.start_attempt(T0, "w")
    delivery.fail(T0, "boom", 5)
    assert delivery.status == "retrying" and delivery.next_attempt_at == T0 + timedelta(seconds=5)
    delivery.start_attempt(T0, "w")
    delivery.fail(T0, "boom", 5)
    assert delivery.status == "failed"
    delivery.retry("ops", T0)
    assert delivery.status == "pending" and delivery.max_attempts == 4
    with pytest.raises(InvalidTransition):
        delivery.retry("ops", T0)


def test_the_signature_covers_delivery_id_event_type_timestamp_and_body() -> None:
    body = b'{"a":1}'
    headers = sig.signature_headers("s3cret", "d-1", "ThresholdCrossingEvent", body)
    assert headers["X-SLA-Signature"].startswith("t=") and ",v2=" in headers["X-SLA-Signature"]
    assert sig.check_signature("s3cret", headers, body) == ("d-1", "ThresholdCrossingEvent")
    lower = {k.lower(): v for k, v in headers.items()}
    assert sig.verify_signature("s3cret", lower, body)  # header names in any case
    assert not sig.verify_signature("s3cret", headers, b'{"a":2}')
    assert not sig.verify_signature("other", headers, body)
    for name, value in (("X-SLA-Delivery-Id", "d-2"), ("X-SLA-Event-Type", "BurnRateAlertEvent"),
                        ("X-SLA-Signature", "garbage")):
        assert not sig.verify_signature("s3cret", {**headers, name: value}, body), name
    without = {k: v for k, v in headers.items() if k != "X-SLA-Event-Type"}
    with pytest.raises(sig.InvalidSignature, match="required"):
        sig.check_signature("s3cret", without, body)
    assert not sig.verify_signature("s3cret", {}, body)


def test_a_signature_too_old_or_from_the_future_beyond_the_skew_is_refused() -> None:
    body, now = b"{}", 1_900_000_000

    def headers(t: int) -> dict[str, str]:
        return sig.signature_headers("s3cret", "d-1", "Mixed", body, timestamp=t)

    assert sig.verify_signature("s3cret", headers(now - 299), body, now=now)
    assert sig.verify_signature("s3cret", headers(now + 29), body, now=now)  # clock skew
    with pytest.raises(sig.InvalidSignature, match="old"):
        sig.check_signature("s3cret", headers(now - 301), body, now=now)
    with pytest.raises(sig.InvalidSignature, match="future"):
        sig.check_signature("s3cret", headers(now + 31), body, now=now)
    with pytest.raises(sig.InvalidSignature, match="future"):
        sig.check_signature("s3cret", headers(now + 3600), body, now=now, tolerance=86400)


def test_secrets_are_derived_per_owner_and_salt() -> None:
    a = d.derive_secret("k" * 40, "member", "m1", "salt")
    assert a == d.derive_secret("k" * 40, "member", "m1", "salt")
    assert a != d.derive_secret("k" * 40, "member", "m2", "salt")
    assert a != d.derive_secret("k" * 40, "member", "m1", "pepper")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/x", "http://localhost:8080/x", "http://10.0.0.5/x",
    "http://192.168.1.1/x", "http://169.254.169.254/latest", "http://[::1]/x",
    "http://0.0.0.0/x", "ftp://example.com/x", "http://user:pw@example.com/x",
])
def test_callbacks_to_loopback_private_or_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(d.CallbackRefused):
        d.check_callback(url, d.NotificationConfig(), resolve=False)


@pytest.mark.parametrize(("url", "why"), [
    ("http://100.64.0.1/x", "CGNAT"),
    ("http://100.100.100.200/latest/meta-data", "CGNAT"),       # a cloud metadata address
    ("http://[2002:7f00:1::]/x", "6to4 form of 127.0.0.1, loopback"),
    ("http://[2002:a9fe:a9fe::1]/x", "6to4 form of 169.254.169.254, link-local"),
    ("http://[::ffff:127.0.0.1]/x", "IPv4-mapped form of 127.0.0.1, loopback"),
    ("http://[::ffff:100.100.100.200]/x", "IPv4-mapped form of 100.100.100.200"),
    ("http://[64:ff9b::a9fe:a9fe]/x", "NAT64 form of 169.254.169.254, link-local"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/x", "Teredo form of 127.0.0.1, loopback"),
    ("http://224.0.0.251/x", "multicast"), ("http://[ff02::1]/x", "multicast"),
    ("http://240.0.0.1/x", "private"), ("http://255.255.255.255/x", "private"),
    ("http://[::]/x", "unspecified"), ("http://[fe80::1]/x", "link-local"),
    ("http://[fd00::1]/x", "private"), ("http://198.18.0.1/x", "private"),
    ("http://192.0.0.8/x", "special-purpose"), ("http://[::127.0.0.1]/x", "reserved"),
    ("http://2130706433/x", "127.0.0.1 (loopback)"),             # decimal form
    ("http://0x7f000001/x", "127.0.0.1 (loopback)"),             # hexadecimal form
])
def test_callbacks_to_addresses_that_are_not_globally_routable_are_refused(
        url: str, why: str) -> None:
    with pytest.raises(d.CallbackRefused, match="not a globally routable") as refused:
        d.check_callback(url, d.NotificationConfig())
    assert why in str(refused.value)


@pytest.mark.parametrize("url", ["http://example.com:99999/", "http://example.com:0/",
                                 "https://93.184.215.14:65536/x", "http://h:-1/"])
def test_a_callback_with_an_invalid_port_is_refused(url: str) -> None:
    with pytest.raises(d.CallbackRefused, match="port"):
        d.check_callback(url, d.NotificationConfig(), resolve=False)


def test_the_allow_list_admits_named_networks_and_hosts() -> None:
    config = d.NotificationConfig.from_env({"SLA_WEBHOOK_ALLOW": "127.0.0.0/8, hooks.internal"})
    d.check_callback("http://127.0.0.1:9000/x", config)
    d.check_callback("http://[::ffff:127.0.0.1]:9000/x", config)  # reaches 127.0.0.1
    d.check_callback("https://hooks.internal/x", config)
    with pytest.raises(d.CallbackRefused):
        d.check_callback("http://10.0.0.1/x", config)
    public = d.NotificationConfig()
    assert d.check_callback("https://93.184.215.14/x", public).addresses == (
        ipaddress.ip_address("93.184.215.14"),)
    d.check_callback("http://[64:ff9b::5db8:d70e]/x", public)  # NAT64 of a public address
    d.check_callback("http://[2002:5db8:d70e::1]/x", public)  # 6to4 of a public address
    d.check_callback("http://[2606:4700::1111]:8443/x", public)


def test_ack_link_tokens_are_derived_from_their_facts_and_name_their_delivery() -> None:
    key, expires = "k" * 40, T0 + timedelta(days=7)
    delivery = "0b6c1a52-3f7e-4f43-9d6b-2a4f3f0e6b11"
    token = d.ack_link_token(key, delivery, "l1", "inc-1", "Ann <ann@x>", expires)
    assert token == d.ack_link_token(key, delivery, "l1", "inc-1", "Ann <ann@x>",
                                     expires)  # derived again when sent
    assert d.parse_ack_link_token(token) == (delivery, "l1")
    assert d.digest_matches(token, d.token_digest(token))
    for changed in (("other" * 8, "inc-1", "Ann <ann@x>", expires),
                    (key, "inc-2", "Ann <ann@x>", expires),
                    (key, "inc-1", "Bob <bob@x>", expires),
                    (key, "inc-1", "Ann <ann@x>", expires + timedelta(seconds=1))):
        other = d.ack_link_token(changed[0], delivery, "l1", *changed[1:])
        assert not d.digest_matches(other, d.token_digest(token))
    from shared import auth
    for bad in ("abc", "a.b.c", auth.issue(key, ["admin"])):  # a bearer token is no link
        with pytest.raises(ValueError):
            d.parse_ack_link_token(bad)
    with pytest.raises(auth.AuthError):
        auth.verify(key, f"Bearer {token}")


def test_old_delivery_records_read_their_acknowledgement_links_redacted() -> None:
    old = {"content": {"text": "Acknowledge: https://sla.example/notification/v1/acknowledge"
                               "?token=eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl\n",
                       "html": '<a href="https://sla.example/notification/v1/acknowledge?'
                               'token=eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl">acknowledge</a>',
                       "body": {"alerts": [{"ackUrl": "http://h/notification/v1/"
                                                      "acknowledge?token=abc.def.ghi"}]}}}
    dom.Delivery.Created.upcast_v1_v2(old)
    assert "token=" not in str(old) and old["ack_links"] == []
    assert old["content"]["body"]["alerts"][0]["ackUrl"] == dom.WITHDRAWN_LINK
    assert 'href="urn:sla-suite:ack-link:withdrawn"' in old["content"]["html"]


@pytest.mark.parametrize(("env", "variable"), [
    ({"SLA_SMTP_SECURITY": "ssl3"}, "SLA_SMTP_SECURITY"),
    ({"SLA_SMTP_PORT": "0"}, "SLA_SMTP_PORT"),
    ({"SLA_SMTP_PORT": "x"}, "SLA_SMTP_PORT"),
    ({"SLA_SMTP_USER": "u"}, "SLA_SMTP_PASSWORD"),
    ({"SLA_SMTP_USER": "u", "SLA_SMTP_PASSWORD": "p"}, "SLA_SMTP_SECURITY"),
    ({"SLA_SMTP_FROM": "nobody"}, "SLA_SMTP_FROM"),
    ({"SLA_PUBLIC_URL": "ftp://x"}, "SLA_PUBLIC_URL"),
    ({"SLA_WEBHOOK_ALLOW": "10.0.0.0/8,not a host"}, "SLA_WEBHOOK_ALLOW"),
    ({"SLA_DELIVERY_BACKOFF_BASE": "10", "SLA_DELIVERY_BACKOFF_CAP": "5"},
     "SLA_DELIVERY_BACKOFF_CAP"),
])
def test_bad_configuration_names_the_variable(env: dict, variable: str) -> None:
    with pytest.raises(ConfigError) as raised:
        d.NotificationConfig.from_env(env)
    assert raised.value.variable == variable


def test_configuration_defaults_follow_the_security_mode() -> None:
    assert d.NotificationConfig.from_env({"SLA_SMTP_SECURITY": "tls"}).smtp_port == 465
    assert d.NotificationConfig.from_env({"SLA_SMTP_SECURITY": "starttls"}).smtp_port == 587
    assert d.NotificationConfig.from_env({}).smtp_port == 25


def test_templates_render_every_channel_and_escape_html() -> None:
    alert = labels(scopeId="<script>", since="2026-03-02T09:00:00Z", measuredValue=99.1,
                   conformanceTarget=99.9, comparator="GE", detailsUrl="https://x/i/1",
                   ackUrl="https://x/ack?token=t")
    mail = render("email", {"id": "l", "name": "NOC"}, [alert], "first")
    assert "availability breached on purchasedOffering" in mail["subject"]
    assert "measured 99.1" in mail["text"] and "https://x/ack?token=t" in mail["text"]
    assert "<script>" not in mail["html"] and "&lt;script&gt;" in mail["html"]
    hook = render("webhook", {"id": "l", "name": "NOC"}, [alert, labels(alertId="b")],
                  "escalation", tier=1)
    assert hook["body"]["reason"] == "escalation" and len(hook["body"]["alerts"]) == 2
    assert "ESCALATION" in hook["subject"]


def test_a_no_data_crossing_is_a_major_alert_that_says_nothing_was_measured() -> None:
    assert dom.severity_of("ThresholdCrossingEvent", "noData") == "major"
    silent = labels(level="noData", measuredValue=None, comparator="GE",
                    conformanceTarget=99.0, since="2026-03-02T08:00:00Z")
    mail = render("email", {"id": "l", "name": "NOC"}, [silent], "first")
    assert "availability sent no data on purchasedOffering p1" in mail["text"]
    assert "nothing measured against GE 99.0" in mail["text"]
    hook = render("webhook", {"id": "l", "name": "NOC"}, [silent], "first")
    assert hook["body"]["alerts"][0]["level"] == "noData"
    assert hook["body"]["alerts"][0]["measuredValue"] is None


def test_a_webhook_connection_is_pinned_to_the_checked_address_and_keeps_the_tls_name() -> None:
    import requests

    session = d.webhook_session()
    assert session.trust_env is False  # no proxy from the environment
    request = requests.Request("POST", "https://hooks.example:8443/x", data=b"{}").prepare()
    request.pinned_address = "93.184.215.14"  # type: ignore[attr-defined]
    pool = session.get_adapter(request.url).get_connection_with_tls_context(request, True)
    assert (pool.host, pool.port) == ("93.184.215.14", 8443)  # no second DNS lookup
    assert pool.assert_hostname == "hooks.example"  # the certificate must name the host
    assert pool.conn_kw["server_hostname"] == "hooks.example"  # TLS SNI
    callback = d.check_callback("https://[2606:4700::1111]:8443/x", d.NotificationConfig())
    assert callback.host_header == "[2606:4700::1111]:8443"
    assert d.check_callback("https://93.184.215.14/x", d.NotificationConfig()
                            ).host_header == "93.184.215.14"
