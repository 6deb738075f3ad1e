"""A MailCatcher-compatible SMTP sink with a live web inbox.

Mail sent to the SMTP port is kept, never delivered; the web port serves
MailCatcher's HTTP API (so existing clients and test helpers work) and an
inbox page that updates over MailCatcher's websocket.
"""

__version__ = "0.1.0"
