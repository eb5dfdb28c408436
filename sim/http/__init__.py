"""The HTTP/JSON gateway: a network reached over HTTP by callers who keep their own keys.

``signing`` is what both ends agree on (signed requests, signature forms),
``service`` drives the network (prepare, endorse, submit, read), ``app`` is
the Starlette application and ``client`` the Python caller. See docs/gateway.md.
"""
