"""A small TCP proxy that tests put between the signer and PostgreSQL, to cut the database away."""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    """Forwards <listen_host>:<port> to a target; ``stop()`` cuts every connection, ``start()`` resumes."""

    def __init__(
        self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1", probe_clients: bool = False
    ) -> None:
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        # Probe each client as PostgreSQL probes the signer (the session's tcp_keepalives_*):
        # a client gone silent behind a partition is dropped with its server session, which the
        # server itself would notice were the proxy not in between.
        self.probe_clients = probe_clients
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.listen_host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.probe_clients:
                for option, value in ((socket.TCP_KEEPIDLE, 5), (socket.TCP_KEEPINTVL, 2), (socket.TCP_KEEPCNT, 3),
                                      (socket.TCP_USER_TIMEOUT, 10_000)):
                    client.setsockopt(socket.IPPROTO_TCP, option, value)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
