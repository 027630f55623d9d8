"""Modal dialogs: confirmations and read-only text views."""
