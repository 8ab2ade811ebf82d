"""A Server-Sent Events server on loopback shaped like Wikimedia EventStreams
(https://wikitech.wikimedia.org/wiki/Event_Platform/EventStreams): ``GET <path>`` streams
``id:`` / ``event: message`` / ``data: <json>`` events; a ``Last-Event-ID`` header (the id of
the last event the client read) resumes right after it. ``drop_after`` cuts the connection
after that many events, as a flaky network does."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/v2/stream/recentchange"


def event_id(offset: int) -> str:
    """An EventStreams id: the Kafka topic, partition and offset of the event."""
    return json.dumps([{"topic": "eqiad.mediawiki.recentchange", "partition": 0, "offset": offset}])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        server: SSEServer = self.server.sse
        if self.path.split("?")[0] != PATH:
            self.send_error(404)
            return
        last = self.headers.get("Last-Event-ID", "")
        server.last_event_ids.append(last)
        start = 0
        if last:
            offset = json.loads(last)[0]["offset"]
            start = next((i + 1 for i, (o, _) in enumerate(server.events) if o == offset), 0)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(b":ok\n\n")
        for sent, (offset, change) in enumerate(server.events[start:]):
            if server.drop_after is not None and sent == server.drop_after:
                server.drop_after = None  # once
                self.close_connection = True
                return
            chunk = f"event: message\nid: {event_id(offset)}\ndata: {json.dumps(change)}\n\n"
            self.wfile.write(chunk.encode())
            self.wfile.flush()
        self.close_connection = True


class SSEServer:
    def __init__(self, events: list[dict]):
        self.events = [(1000 + n, change) for n, change in enumerate(events)]
        self.drop_after: int | None = None
        self.last_event_ids: list[str] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.sse = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{PATH}"

    def __enter__(self) -> SSEServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
