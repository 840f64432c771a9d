"""The command's output: one pipe for stdout and stderr, head and tail kept."""

from __future__ import annotations

import asyncio

__all__ = ["HeadTail", "Collector"]


class HeadTail:
    """Keeps the first and last halves of a byte stream, counting the total."""

    def __init__(self, limit: int) -> None:
        self.half = limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.half:
                del self.tail[: len(self.tail) - self.half]

    def render(self) -> tuple[str, bool]:
        """The kept text, and whether anything was elided."""
        head, tail = bytes(self.head), bytes(self.tail)
        if self.total == len(head) + len(tail):
            return (head + tail).decode(errors="replace"), False
        # Cut at line boundaries so the reader sees whole lines on both sides.
        if (nl := head.rfind(b"\n")) > len(head) // 2:
            head = head[: nl + 1]
        if 0 <= (nl := tail.find(b"\n")) < len(tail) // 2:
            tail = tail[nl + 1 :]
        elided = self.total - len(head) - len(tail)
        marker = f"[... backforge sandbox: {elided} bytes of output elided ...]\n"
        if head and not head.endswith(b"\n"):
            marker = "\n" + marker
        return head.decode(errors="replace") + marker + tail.decode(errors="replace"), True


class Collector(asyncio.SubprocessProtocol):
    """Collects the launcher's output and tells when it exits and when output ends.

    (``asyncio.subprocess.Process.wait`` would also wait for the pipe to close, which a
    leftover process outside a pid namespace can hold open.)
    """

    def __init__(self, output: HeadTail, loop: asyncio.AbstractEventLoop) -> None:
        self.output = output
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.output.feed(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if not self.drained.done():
            self.drained.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)
