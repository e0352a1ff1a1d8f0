"""Programmatic granian start with an app factory (import string required: workers are separate processes)."""
from granian import Granian
from granian.constants import Interfaces, Loops, HTTPModes

if __name__ == "__main__":  # guard is required: granian spawns worker processes
    Granian(
        "app_starlette:create_app", factory=True,  # or target="app_starlette:app" without factory
        address="127.0.0.1", port=8005, interface=Interfaces.ASGI, workers=1,
        runtime_threads=1, loop=Loops.uvloop, http=HTTPModes.http1, websockets=False,
        log_access=False,
    ).serve()
