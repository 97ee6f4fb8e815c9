"""Keys typed into a text field are handled one after another, in the order they were typed.

Why (issue 17: "C-u Tab 7" lost the 7; "Tab C-u 2 1" cleared the wrong field): Textual reads a key
on the App, posts it to the focused widget's queue and lets it bubble up, one queue per ancestor,
back to the App, which only then runs the non-priority bindings (an Input's ctrl+u, the Screen's
Tab) against whatever has the focus *at that moment*. Meanwhile the next keys, already read, were
posted to the field that had the focus when they arrived. Typed at full speed (a paste-fast
terminal, tmux send-keys, a user's muscle memory) a ctrl+u ran after the characters typed behind
it, or on the field the Tab had moved to, and a character typed right after Tab landed in the
field being left.

The fix routes a key to the focused text field and up through its ancestors now, on the App's own
queue, before the next key is read: the same handlers and bindings, in the same order Textual
uses, without the queues in between. Only while an Input has the focus: other widgets (tables,
lists, the palette) read keys one by one and keep Textual's routing. Tab and shift+Tab are
priority bindings of the App (app/app.py), so the focus has moved before the next key is routed.

It uses Textual's message-routing internals (App._check_bindings, MessagePump._get_dispatch_methods,
Message._stop_propagation): textual is pinned exactly (pyproject.toml), and
tests/tui/test_tmux_keys.py fails if a Textual release changes them.
"""

from __future__ import annotations

import asyncio
import inspect
import time

from textual import events
from textual.dom import NoScreen
from textual.app import App
from textual.widgets import Input


SETTLE_S = 0.1  # the longest a key waits for its field to take the focus (normally < 1 ms)


async def _settle(widget) -> None:
    """Let the field handle what is already in its queue (the Focus event a Tab just posted, which
    selects its text so that typing replaces it) before it gets the next key."""
    deadline = time.monotonic() + SETTLE_S
    while not widget._message_queue.empty() and time.monotonic() < deadline:
        await asyncio.sleep(0)


async def route_key_now(app: App, event: events.Key) -> bool:
    """Handle a key read by the App at once when an Input has the focus; False: not handled here
    (Textual's own routing takes it)."""
    focused = app.focused
    if not isinstance(focused, Input) or app.screen.maximized is not None:
        return False
    try:
        app.screen._clear_tooltip()
    except NoScreen:
        pass
    if await app._check_bindings(event.key, priority=True):
        return True
    focused = app.focused  # a priority binding (Tab) may have moved it
    if not isinstance(focused, Input):
        return False
    await _settle(focused)
    event._set_forwarded()
    node = focused
    # As MessagePump._on_message does per queue: each node's handlers, then its parent's, until a
    # handler stops the event. prevent_default() stops one node's class chain, not its parent's.
    while node is not None and node is not app and not event._stop_propagation:
        event._no_default_action = False
        with node.prevent(*event._prevent):
            for _cls, method in node._get_dispatch_methods(event.handler_name, event):
                result = method(event)
                if inspect.isawaitable(result):
                    await result
        node = node._parent
    if not event._stop_propagation:
        event._no_default_action = False
        await app._on_key(event)  # the non-priority bindings, from the focused widget up
    return True
