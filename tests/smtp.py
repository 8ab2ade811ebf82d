"""A real SMTP server on loopback (aiosmtpd) that records what it receives, and can be told
to refuse: a 4xx or 5xx for chosen recipients, or to stop and start again."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage


@dataclass
class Recorder:
    received: list[Received] = field(default_factory=list)
    # Address → SMTP reply for RCPT TO, e.g. "550 5.1.1 No such user" or "451 4.3.0 Try later".
    refuse: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def count_by_address(self) -> Counter:
        with self.lock:
            return Counter(rcpt.lower() for r in self.received for rcpt in r.recipients)

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self.lock:
            return [
                r.message for r in self.received if address.lower() in map(str.lower, r.recipients)
            ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SMTPServer:
    """Start, stop and start again on the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.recorder = Recorder()
        self.controller: Controller | None = None

    def start(self) -> SMTPServer:
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"
