"""The key footer of the main screen, built once the first picture is out and only when its keys change.

Textual's :class:`~textual.widgets.Footer` rebuilds all its key widgets (about twenty here, each restyled
on mount) whenever the screen's bindings may have changed: on mount, and on every focus change. At
start-up that happened five times before the first picture (mount, the tree taking focus, the image
pane taking it when the first series opens...), about a hundred restylings on the way to the first
frame. This footer:

- is *held* until the screen releases it (after the first picture, or when there is nothing to show),
  keeping its one docked line empty meanwhile, so the layout never moves when the keys appear;
- recomposes only when the keys it would show differ from the ones it shows.
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer


class ViewerFooter(Footer):
    """A :class:`Footer` that can be held back and skips rebuilds that would show the same keys."""

    def __init__(self, *, held: bool = False, id: str | None = None) -> None:
        """Args:
        held: start without keys until :meth:`release` (the screen's first picture goes first).
        id: the widget id.
        """
        super().__init__(id=id)
        self._held = held
        self._pending = False
        #: what the shown keys were built from (see :meth:`_signature`)
        self._shown: Hashable = None

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return self._held

    def release(self) -> None:
        """Show the keys now (and follow binding changes from now on); later calls do nothing."""
        if not self._held:
            return
        self._held = False
        if self._pending and self.is_attached:
            self._pending = False
            # in the footer's own message loop: its compose binds data to itself (not to the caller)
            self.call_later(self.bindings_changed, self.screen)

    def _signature(self) -> Hashable:
        """The keys the footer would show: binding, description, action, enabled, tooltip, in order."""
        return tuple(
            (binding.key, binding.key_display, binding.description, binding.action, enabled, tooltip)
            for (_node, binding, enabled, tooltip) in self.screen.active_bindings.values()
            if binding.show
        ) + ((self.show_command_palette, self.app.ENABLE_COMMAND_PALETTE),)

    def compose(self) -> ComposeResult:
        """The keys (none while held); remembers what they were built from."""
        if self._held or not self._bindings_ready:
            return
        self._shown = self._signature()
        yield from super().compose()

    def bindings_changed(self, screen: Screen[object]) -> None:
        """Rebuild when the shown keys would change; while held, only remember that they did."""
        if self._held:
            self._bindings_ready = True
            self._pending = True
            return
        if self._shown is not None and self.is_attached and screen is self.screen:
            try:
                if self._signature() == self._shown:
                    return
            except Exception:  # noqa: BLE001 - no screen yet: rebuild as Textual would
                pass
        super().bindings_changed(screen)
