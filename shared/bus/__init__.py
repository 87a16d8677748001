"""The suite's bus: envelope, transports (AMQP and in-process), outbox relay and inbox.

Both transports share every other line: the outbox, the inbox, the envelope and the
contract validation are the same code in embedded and distributed mode.
"""
