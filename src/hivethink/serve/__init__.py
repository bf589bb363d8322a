"""``hivethink serve``: an OpenAI-compatible HTTP server over the continuous-batching scheduler.

:func:`create_app` builds the FastAPI app, :class:`ServeLimits` bounds what a request may ask,
:class:`BackgroundServer` runs the app on a thread (tests, ``hivethink bench serve``).
"""

from hivethink.serve.app import create_app
from hivethink.serve.limits import ServeLimits
from hivethink.serve.server import BackgroundServer, serve_forever

__all__ = ["BackgroundServer", "ServeLimits", "create_app", "serve_forever"]
