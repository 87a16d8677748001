"""RabbitMQ transport on pika: durable topic exchanges and queues, persistent messages,
publisher confirms, manual acks, and automatic reconnection after a broker restart.

Callers speak of logical exchange and queue names; this transport alone maps them to the
suite's broker names (``SLA_BUS_PREFIX``) on the way out and back on the way in, so no
code path can forget the prefix and tracking records stay the same with or without one."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel

from shared.bus.envelope import OutgoingMessage
from shared.bus.topology import DEAD_LETTER, EXCHANGES, BrokerNames, QueueSpec
from shared.bus.transport import (
    LAST_ERROR_HEADER,
    ORIGIN_EXCHANGE_HEADER,
    ORIGIN_KEY_HEADER,
    RETRY_HEADER,
    BatchConsumer,
    Consumer,
    Delivery,
    Settle,
    Transport,
    backoff,
    dead_letter_headers,
)

log = logging.getLogger(__name__)

CONNECTION_ERRORS = (
    pe.AMQPConnectionError,
    pe.ConnectionClosed,
    pe.StreamLostError,
    pe.ChannelClosed,
    pe.ChannelWrongStateError,
    ConnectionError,
    OSError,
)


class PublishNotConfirmed(RuntimeError):
    """The broker refused or did not confirm a message."""


def _parameters(url: str, name: str | None = None) -> pika.URLParameters:
    params = pika.URLParameters(url)
    if name:
        # Shown by the broker (``rabbitmqctl list_connections client_properties``, the
        # management UI): which service a connection belongs to.
        params.client_properties = {"connection_name": name}
    params.heartbeat = 30
    params.blocked_connection_timeout = 30
    params.connection_attempts = 1
    params.socket_timeout = 5
    return params


def _properties(message_id: str | None, headers: dict[str, Any], *,
                correlation_id: str | None = None,
                event_type: str | None = None) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=message_id,
        correlation_id=correlation_id,
        type=event_type,
        headers=headers or None,
    )


def _no_wait() -> None:
    return None


class _PendingCommit:
    """A batch whose ``tx.commit`` is sent and whose ``tx.commit-ok`` is awaited."""

    def __init__(self, transport: AmqpTransport, channel: BlockingChannel) -> None:
        self.transport, self.channel = transport, channel
        self.confirmed = False
        self.error: Exception | None = None

    def confirm(self, _frame: Any) -> None:
        self.confirmed = True

    def fail(self, error: Exception) -> None:
        if not self.confirmed and self.error is None:
            self.error = error

    def wait(self) -> None:
        if not self.confirmed and self.error is None:
            try:
                # As ``BlockingChannel.tx_commit`` waits for its reply: on the channel, so
                # a channel the broker closes (or a lost connection) ends the wait.
                self.channel._flush_output(lambda: self.confirmed or self.error is not None)
                if not self.confirmed and self.error is None:
                    raise PublishNotConfirmed("the channel closed before the broker "
                                              "confirmed the batch")
            except (*CONNECTION_ERRORS, PublishNotConfirmed) as exc:
                self.fail(exc)
                self.transport._drop_publisher()
        if getattr(self.transport._local, "pending", None) is self:
            self.transport._local.pending = None
        if self.error is not None:
            raise self.error


class AmqpTransport(Transport):
    def __init__(self, url: str, prefix: str = "", name: str | None = None) -> None:
        self.url, self.name = url, name
        self.names = BrokerNames(prefix)
        self._local = threading.local()

    # --- connections ------------------------------------------------------------------
    def _connect(self) -> tuple[pika.BlockingConnection, BlockingChannel]:
        connection = pika.BlockingConnection(_parameters(self.url, self.name))
        channel = connection.channel()
        channel.confirm_delivery()
        return connection, channel

    def _publisher(self) -> BlockingChannel:
        """This thread's publishing channel, in AMQP transaction mode: a batch is
        committed with one round trip, and ``tx.commit-ok`` comes only once the broker has
        taken responsibility for every message of it (as a confirm would, per message)."""
        channel = getattr(self._local, "channel", None)
        if channel is None or not channel.is_open:
            self._drop_publisher()
            connection = pika.BlockingConnection(_parameters(self.url, self.name))
            channel = connection.channel()
            self._declare_exchanges(channel)
            channel.tx_select()
            self._local.connection, self._local.channel = connection, channel
        return self._local.channel

    def _drop_publisher(self) -> None:
        pending: _PendingCommit | None = getattr(self._local, "pending", None)
        if pending is not None:
            pending.fail(PublishNotConfirmed("the publisher connection was closed before "
                                             "the broker confirmed the batch"))
        connection = getattr(self._local, "connection", None)
        self._local.connection = self._local.channel = self._local.pending = None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass

    def close(self) -> None:
        self._drop_publisher()

    # --- topology ---------------------------------------------------------------------
    def _declare_exchanges(self, channel: BlockingChannel) -> None:
        for exchange in EXCHANGES:
            channel.exchange_declare(self.names.exchange(exchange), exchange_type="topic",
                                     durable=True)
        channel.exchange_declare(self.names.exchange(DEAD_LETTER), exchange_type="direct",
                                 durable=True)

    def _declare_queue(self, channel: BlockingChannel, spec: QueueSpec) -> None:
        names = self.names
        channel.queue_declare(names.queue(spec.name), durable=True)
        channel.queue_declare(names.queue(spec.dead_letter_queue), durable=True)
        channel.queue_bind(names.queue(spec.dead_letter_queue), names.exchange(DEAD_LETTER),
                           routing_key=spec.name)
        for b in spec.bindings:
            channel.queue_bind(names.queue(spec.name), names.exchange(b.exchange),
                               routing_key=b.routing_key)

    def declare(self, queues: Sequence[QueueSpec] = ()) -> None:
        connection, channel = self._connect()
        try:
            self._declare_exchanges(channel)
            for spec in queues:
                self._declare_queue(channel, spec)
        finally:
            connection.close()

    # --- publishing -------------------------------------------------------------------
    # Messages written out to the socket at a time while a batch is published.
    FLUSH_EVERY = 256

    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """The batch in one AMQP transaction. The messages are queued on the connection
        and written out together, a few hundred at a time, instead of one socket write
        (and poll) each, as ``BlockingChannel.basic_publish`` does outside confirm mode;
        ``tx.commit-ok`` still comes only once the broker has every one of them."""
        self.publish_started(messages)()

    def publish_started(self, messages: Sequence[OutgoingMessage]) -> Callable[[], None]:
        """The batch's messages and its ``tx.commit`` sent; the call returned waits for
        ``tx.commit-ok`` (the broker has taken responsibility for every message). Until
        then the thread is free: the relay describes its next page meanwhile."""
        self._settle_pending()
        try:
            channel = self._publisher()
            impl = getattr(channel, "_impl", None)
            if impl is None:  # not the pika this was written for: one round trip
                self._queue(channel, None, messages)
                channel.tx_commit()
                return _no_wait
            connection = self._local.connection
            self._queue(channel, impl, messages)
            pending = _PendingCommit(self, channel)
            impl.tx_commit(pending.confirm)
            connection.process_data_events(time_limit=0)  # written out now
        except CONNECTION_ERRORS:
            self._drop_publisher()
            raise
        self._local.pending = pending
        return pending.wait

    def _settle_pending(self) -> None:
        """Wait for the batch still in flight on this thread's channel (its own caller
        hears how it went when it asks; a failure has dropped the connection)."""
        pending: _PendingCommit | None = getattr(self._local, "pending", None)
        if pending is not None:
            with contextlib.suppress(Exception):
                pending.wait()

    def _queue(self, channel: BlockingChannel, impl: Any,
               messages: Sequence[OutgoingMessage]) -> None:
        """Each message published on the channel (``impl``: queued on the connection
        without a write each, flushed every ``FLUSH_EVERY``)."""
        connection = self._local.connection
        for n, m in enumerate(messages, 1):
            exchange = self.names.exchange(m.exchange)
            if impl is None:
                self._publish_one(channel, exchange, m.routing_key, m.to_bytes(),
                                  m.message_id, dict(m.headers),
                                  correlation_id=m.envelope.correlation_id,
                                  event_type=m.envelope.event_type)
                continue
            impl.basic_publish(exchange=exchange, routing_key=m.routing_key,
                               body=m.to_bytes(), properties=_properties(
                                   m.message_id, dict(m.headers),
                                   correlation_id=m.envelope.correlation_id,
                                   event_type=m.envelope.event_type))
            if n % self.FLUSH_EVERY == 0:
                connection.process_data_events(time_limit=0)

    def publish_raw(self, exchange: str, routing_key: str, body: bytes,
                    message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        self._settle_pending()
        try:
            channel = self._publisher()
            self._publish_one(channel, self.names.exchange(exchange), routing_key, body,
                              message_id, dict(headers or {}))
            channel.tx_commit()
        except CONNECTION_ERRORS:
            self._drop_publisher()
            raise

    @staticmethod
    def _publish_one(channel: BlockingChannel, exchange: str, routing_key: str, body: bytes,
                     message_id: str | None, headers: dict[str, Any], *,
                     correlation_id: str | None = None, event_type: str | None = None) -> None:
        properties = _properties(message_id, headers, correlation_id=correlation_id,
                                 event_type=event_type)
        try:
            channel.basic_publish(exchange, routing_key, body, properties)
        except (pe.NackError, pe.UnroutableError) as exc:
            raise PublishNotConfirmed(str(exc)) from exc

    # --- consuming --------------------------------------------------------------------
    def consume(self, queue: QueueSpec, consumer: Consumer, stop: threading.Event,
                prefetch: int = 50, on_idle: Callable[[], None] | None = None,
                idle_timeout: float = 0.25) -> None:
        def each(channel: BlockingChannel, delivery: Delivery, settle: Settle) -> None:
            consumer(delivery, settle)

        self._consume(queue, each, stop, prefetch, on_idle, idle_timeout)

    def consume_many(self, queue: QueueSpec, consumer: BatchConsumer, stop: threading.Event,
                     prefetch: int = 50, max_batch: int = 100,
                     idle_timeout: float = 0.25) -> None:
        """Deliveries in lists of what pika has already read off the socket
        (``get_waiting_message_count``): nothing is held back waiting for more."""
        batch: list[tuple[Delivery, Settle]] = []

        def each(channel: BlockingChannel, delivery: Delivery, settle: Settle) -> None:
            batch.append((delivery, settle))
            if len(batch) >= max_batch or channel.get_waiting_message_count() == 0:
                taken = batch[:]
                batch.clear()
                consumer(taken)

        def lost() -> None:
            batch.clear()  # unsettled on a closed channel: the broker delivers them again

        self._consume(queue, each, stop, prefetch, None, idle_timeout, on_lost=lost)

    def _consume(self, queue: QueueSpec,
                 each: Callable[[BlockingChannel, Delivery, Settle], None],
                 stop: threading.Event, prefetch: int,
                 on_idle: Callable[[], None] | None, idle_timeout: float,
                 on_lost: Callable[[], None] | None = None) -> None:
        failures = 0
        while not stop.is_set():
            connection = None
            try:
                connection, channel = self._connect()
                self._declare_exchanges(channel)
                self._declare_queue(channel, queue)
                channel.basic_qos(prefetch_count=prefetch)
                failures = 0
                for method, props, body in channel.consume(self.names.queue(queue.name),
                                                           inactivity_timeout=idle_timeout):
                    if stop.is_set():
                        break
                    if method is None:
                        if on_idle is not None:
                            on_idle()
                        continue
                    delivery = Delivery(
                        body=body,
                        exchange=self.names.logical_exchange(method.exchange),
                        routing_key=method.routing_key,
                        message_id=props.message_id,
                        headers=dict(props.headers or {}),
                        redelivered=bool(method.redelivered),
                    )
                    each(channel, delivery, _AmqpSettle(channel, self.names, queue,
                                                        method.delivery_tag, props, delivery))
                with contextlib.suppress(CONNECTION_ERRORS):
                    channel.cancel()
            except CONNECTION_ERRORS as exc:
                failures += 1
                if on_lost is not None:
                    on_lost()
                log.warning("bus connection lost on %s (%s); reconnecting", queue.name, exc)
                stop.wait(backoff(failures, base=0.2, cap=5.0))
            finally:
                if on_lost is not None:
                    on_lost()
                if connection is not None and connection.is_open:
                    try:
                        connection.close()
                    except Exception:  # noqa: BLE001
                        pass

    def queue_depth(self, queue_name: str) -> int:
        connection, channel = self._connect()
        try:
            return channel.queue_declare(self.names.queue(queue_name),
                                         passive=True).method.message_count
        finally:
            connection.close()

    def ping(self) -> None:
        connection = pika.BlockingConnection(_parameters(self.url, self.name))
        connection.close()


class _AmqpSettle(Settle):
    def __init__(self, channel: BlockingChannel, names: BrokerNames, queue: QueueSpec,
                 tag: int, props: pika.BasicProperties, delivery: Delivery) -> None:
        self.channel, self.names, self.queue, self.tag, self.props, self.delivery = (
            channel, names, queue, tag, props, delivery)

    def ack(self) -> None:
        self.channel.basic_ack(self.tag)

    def ack_deferred(self) -> None:
        return None  # the ack_through that follows covers it

    def ack_through(self) -> None:
        self.channel.basic_ack(self.tag, multiple=True)

    def _republish(self, exchange: str, routing_key: str, headers: dict[str, Any]) -> None:
        props = pika.BasicProperties(
            content_type=self.props.content_type,
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=self.props.message_id,
            correlation_id=self.props.correlation_id,
            type=self.props.type,
            headers=headers,
        )
        # Confirmed before the ack: a crash in between re-delivers, never loses.
        self.channel.basic_publish(exchange, routing_key, self.delivery.body, props)
        self.channel.basic_ack(self.tag)

    def retry_later(self, reason: str) -> None:
        headers = {**self.delivery.headers, RETRY_HEADER: self.delivery.attempt + 1,
                   LAST_ERROR_HEADER: reason[:500],
                   ORIGIN_EXCHANGE_HEADER: self.delivery.origin_exchange,
                   ORIGIN_KEY_HEADER: self.delivery.origin_routing_key}
        self._republish("", self.names.queue(self.queue.name), headers)

    def dead_letter(self, reason: str) -> None:
        self._republish(self.names.exchange(DEAD_LETTER), self.queue.name,
                        dead_letter_headers(self.delivery, self.queue, reason))
