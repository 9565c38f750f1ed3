"""The Textual layer: app, screens, widgets, messages."""
