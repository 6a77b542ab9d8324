"""Who may drive the page: one server holds one Slicer scene and one trame state, so it serves one session.

trame shares its state with every connected browser tab (it is built for collaboration), and the scene with its
volumes, views and results exists once per process. Two tabs driving it at once would overwrite each other's
choices without either user seeing why. So the first tab that connects holds the session; a tab opened while it
is connected is told so and is read-only (it shows the same views, with a banner over the page); when the holding
tab closes, the tab waiting longest takes over. A reload of the only tab keeps the work (volumes, results), since
the scene is the work; a second user needs a second ``medfusion app --port N``.

:class:`SessionGuard` is the pure bookkeeping; :func:`attach` wires it to a trame server (its clients' connect and
exit events, a message to one client only, and the id of the client whose request is being handled):
:class:`SessionLink`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BANNER_KEY = "session_viewer"  # false in the shared state; set true on a read-only tab, told to it alone
IN_USE = (
    "MedFusion is open in another browser tab or window, which holds this session: this page is read-only and "
    "takes over when that tab is closed. (One server serves one session: for a second user, start another "
    "'medfusion app --port N'.)"
)


class SessionGuard:
    """The holder of the session and the read-only tabs waiting behind it, in the order they connected."""

    def __init__(self) -> None:
        self.holder: str | None = None
        self.waiting: list[str] = []

    def connected(self, client: str) -> bool:
        """A tab connected: returns True when it holds the session (the first one), False when read-only."""
        if self.holder is None or self.holder == client:
            self.holder = client
            return True
        if client not in self.waiting:
            self.waiting.append(client)
        return False

    def exited(self, client: str) -> str | None:
        """A tab closed (or its connection dropped): returns the tab that takes over, if any."""
        if client in self.waiting:
            self.waiting.remove(client)
            return None
        if client != self.holder:
            return None
        self.holder = self.waiting.pop(0) if self.waiting else None
        return self.holder

    def may_act(self, client: str | None) -> bool:
        """Whether a request from ``client`` may change the session (unknown clients: only when nobody holds it,
        i.e. the app driven without a browser, as the tests do)."""
        return self.holder is None or client == self.holder


def _connection_watch(on_close: Callable[[str], None]) -> Any:
    """A wslink link protocol whose ``onClose`` wslink calls when a tab's connection drops (also without a
    goodbye: a crashed or killed browser)."""
    from wslink.websocket import LinkProtocol

    class ConnectionWatch(LinkProtocol):
        def onClose(self, client_id: str) -> None:  # noqa: N802 (wslink's name)
            on_close(str(client_id))

    return ConnectionWatch()


class SessionLink:
    """The guard wired to a trame server: its clients' connect and exit events, the client of the request being
    handled, and messages to one client only (the page state of a read-only tab)."""

    def __init__(self, server: Any, guard: SessionGuard) -> None:
        self.server, self.guard = server, guard
        server.controller.on_client_connected.add(self._connected)
        server.controller.on_client_exited.add(lambda **_: self._exited(self.current_client()))
        server.add_protocol_to_configure(
            lambda protocol: protocol.registerLinkProtocol(_connection_watch(self._exited))
        )

    def current_client(self) -> str | None:
        """The tab whose request is being handled (wslink records it before each call), or None."""
        web_app = getattr(self.server, "_server", None)  # wslink's web app, set when the server binds
        client = getattr(web_app, "last_active_client_id", None)
        return str(client) if client is not None else None

    def tell(self, client: str, **page_state: Any) -> None:
        """Set page state on one tab only (trame's own state goes to every tab)."""
        self.server.protocol.publish("trame.state.topic", page_state, client_id=client)

    def may_act(self) -> bool:
        """Whether the request being handled may change the session; a read-only tab is told why, alone."""
        client = self.current_client()
        if self.guard.may_act(client):
            return True
        if client is not None:
            self.tell(client, error="Read-only: another tab holds this session.")
        return False

    def _connected(self, **_: Any) -> None:
        client = self.current_client()
        if client is not None and not self.guard.connected(client):
            self.tell(client, **{BANNER_KEY: True})

    def _exited(self, client: str | None) -> None:
        successor = self.guard.exited(client) if client is not None else None
        if successor is not None:
            self.tell(successor, **{BANNER_KEY: False, "error": ""})
