"""The client's address behind reverse proxies, for login throttling (django-axes).

With ``PROXY_COUNT`` = N trusted proxies in front, each appends the address it received
the request from to ``X-Forwarded-For``: the client is the N-th entry from the right
(what Werkzeug's ProxyFix does). Entries further left are whatever the client sent and
are never trusted. Without proxies, or with fewer entries than proxies, REMOTE_ADDR.

Not django-ipware: its proxy count expects an exact number of entries and answers None
when a client adds or omits one, which would put every such login under one key.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.PROXY_COUNT
    if not proxies:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < proxies:
        return remote
    candidate = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote  # garbage in the header: the proxy's own view of the peer
