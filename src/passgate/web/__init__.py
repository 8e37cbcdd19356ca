"""The HTTP edge: JSON API, hosted pages and the browser client."""

from passgate.web.app import create_app

__all__ = ["create_app"]
