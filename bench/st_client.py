"""A browser tab as Streamlit's websocket protocol sees it, for the load test's abuse mode and
the abuse tests (tests/test_abuse.py): open a page, read what it drew, press a button, type in
a box, from a chosen source address and with or without the visitor cookie a browser would
keep. Nothing here knows Transfer Lab's pages beyond their URL paths; it speaks the same
messages the browser does (`BackMsg.rerun_script` with widget states) and reads the same
(`ForwardMsg` deltas), so what it sees is what a hostile script could see and do.

    visitor = Visitor(port, source="127.0.0.2", cookie=True)   # GET / first, keep its cookie
    async with visitor.tab("classroom", "class=K7MX3P") as tab:
        await tab.click("Join class K7MX3P")
        print(tab.texts())
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Optional

COOKIE = "transferlab_visitor"


@dataclass
class Element:
    kind: str  # the element's proto type: "button", "text_input", "markdown", "alert", ...
    proto: object  # the element's message
    label: str = ""
    widget_id: str = ""
    body: str = ""  # markdown/alert/caption text, a metric's value


def get(port: int, path: str = "/", source: Optional[str] = None,
        cookie: Optional[str] = None) -> tuple[int, dict, bytes]:
    """An HTTP GET to 127.0.0.1:`port` from `source` (a loopback address such as 127.0.0.2);
    returns the status, the headers (lower-case names; Set-Cookie lines joined by newlines)
    and the body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request("GET", path, headers={"Cookie": f"{COOKIE}={cookie}"} if cookie else {})
        response = conn.getresponse()
        headers: dict[str, str] = {}
        for name, value in response.getheaders():
            key = name.lower()
            headers[key] = f"{headers[key]}\n{value}" if key in headers else value
        return response.status, headers, response.read()
    finally:
        conn.close()


def visitor_cookie(headers: dict) -> Optional[str]:
    """The visitor id a response's Set-Cookie gives, if any."""
    for line in headers.get("set-cookie", "").split("\n"):
        if line.startswith(f"{COOKIE}="):
            return SimpleCookie(line)[COOKIE].value
    return None


@dataclass
class Visitor:
    """One visitor: a source address, and the cookie the server gave it when `cookie`."""

    port: int
    source: str = "127.0.0.1"
    cookie: bool = True
    value: Optional[str] = None  # the visitor cookie's value, once the server set it

    def __post_init__(self):
        if self.cookie and self.value is None:
            self.value = visitor_cookie(get(self.port, "/", self.source)[1])

    @contextlib.asynccontextmanager
    async def tab(self, page: str, query: str = "", timeout: float = 120.0):
        tab = Tab(self, page, query, timeout)
        await tab.connect()
        try:
            yield tab
        finally:
            await tab.close()


@dataclass
class Tab:
    visitor: Visitor
    page: str
    query: str = ""
    timeout: float = 120.0
    page_hash: str = ""
    elements: list[Element] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    finished: str = ""  # how the latest script run ended

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        headers = {"Cookie": f"{COOKIE}={self.visitor.value}"} if self.visitor.value else {}
        self._ws = await connect(f"ws://127.0.0.1:{self.visitor.port}/_stcore/stream",
                                 subprotocols=["streamlit"], max_size=None, open_timeout=60,
                                 ping_interval=None, additional_headers=headers,
                                 local_addr=(self.visitor.source, 0))
        await self.rerun()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._ws.close()

    def _message(self, widgets=(), trigger: Optional[str] = None) -> bytes:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        msg.rerun_script.query_string = self.query
        msg.rerun_script.page_name = self.page
        msg.rerun_script.page_script_hash = self.page_hash
        for widget_id, kind, value in widgets:
            state = msg.rerun_script.widget_states.widgets.add()
            state.id = widget_id
            setattr(state, kind, value)
        if trigger is not None:
            state = msg.rerun_script.widget_states.widgets.add()
            state.id = trigger
            state.trigger_value = True
        return msg.SerializeToString()

    async def rerun(self, widgets=(), trigger: Optional[str] = None) -> "Tab":
        """One full script run with these widget states; waits until it has finished (a
        rerun the script asks for itself is followed too)."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        await self._ws.send(self._message(widgets, trigger))
        deadline = time.time() + self.timeout
        while True:
            data = await asyncio.wait_for(self._ws.recv(), timeout=max(0.1, deadline - time.time()))
            msg = ForwardMsg()
            msg.ParseFromString(data)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.elements, self.exceptions = [], []
            elif kind == "navigation":
                self.page_hash = msg.navigation.page_script_hash
            elif kind == "page_info_changed":
                self.query = msg.page_info_changed.query_string
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                self._add(msg.delta.new_element)
            elif kind == "script_finished":
                status = msg.script_finished
                if status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                    continue
                self.finished = ForwardMsg.ScriptFinishedStatus.Name(status)
                if status == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # the script asked for a rerun (st.rerun): its run follows
                return self

    def _add(self, element) -> None:
        kind = element.WhichOneof("type")
        proto = getattr(element, kind)
        label = getattr(proto, "label", "") if hasattr(proto, "label") else ""
        widget_id = getattr(proto, "id", "") if hasattr(proto, "id") else ""
        body = ""
        if kind in ("markdown", "alert", "code"):
            body = getattr(proto, "body", "") or getattr(proto, "code_text", "")
        elif kind == "metric":
            body = proto.body
        elif kind == "exception":
            self.exceptions.append(f"{proto.type}: {proto.message}")
        elif kind == "toast":
            body = proto.body
        self.elements.append(Element(kind, proto, label, widget_id, body))

    # ---- what a page shows -------------------------------------------------------------------

    def texts(self) -> str:
        return "\n".join(e.body for e in self.elements if e.body)

    def widget(self, label: str, kind: Optional[str] = None) -> Element:
        for element in self.elements:
            if element.label == label and (kind is None or element.kind == kind):
                return element
        raise LookupError(f"no {kind or 'widget'} labelled {label!r} on {self.page}: "
                          f"{[e.label for e in self.elements if e.label]}")

    def has(self, label: str) -> bool:
        return any(e.label == label for e in self.elements)

    def metric(self, label: str) -> Optional[str]:
        found = [e for e in self.elements if e.kind == "metric" and e.label == label]
        return found[0].body if found else None

    # ---- what a visitor does -------------------------------------------------------------------

    async def click(self, label: str, widgets=()) -> "Tab":
        """Press the button (or a form's submit button) labelled `label`."""
        return await self.rerun(widgets, trigger=self.widget(label, "button").widget_id)

    async def submit(self, form_button: str, **texts: str) -> "Tab":
        """Type `texts` (label -> value) into text inputs, then press `form_button`."""
        widgets = [(self.widget(label, "text_input").widget_id, "string_value", value)
                   for label, value in texts.items()]
        return await self.click(form_button, widgets)
