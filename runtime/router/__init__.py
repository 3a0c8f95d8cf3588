"""The HTTP router: an asyncio reverse proxy in front of the apps' web processes.

`serve()` runs it on a listening socket; the supervisor pushes `RoutingTable`
snapshots; `log(app, line)` receives one Heroku-format line per request.
"""

from .config import RouterConfig
from .logline import LogFn
from .server import serve
from .table import RoutingError, RoutingTable

__all__ = ["LogFn", "RouterConfig", "RoutingError", "RoutingTable", "serve"]
