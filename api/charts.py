"""Content negotiation for charts: the same route answers JSON, or a PNG/SVG picture of it.

A client asks for a picture with `Accept: image/png` (or `image/svg+xml`) or by calling the route with a `.png`
or `.svg` suffix. Use it in a view like this::

    @blp.route("/forecast")
    @charts.image_routes(blp, "/forecast")          # adds /forecast.png and /forecast.svg
    class Forecast(MethodView):
        def get(self, query, fmt=None):
            result = ...
            if image := charts.requested_format(fmt):
                return charts.image_response(render(result, image), image, "forecast")
            return charts.json_response(as_json(result))   # or the dict, dumped by the view's schema
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, jsonify, request

from services.charts import FORMATS, MEDIA_TYPES

#: What a view may answer, in our order of preference when the client accepts several equally.
_OFFERS = ("application/json", MEDIA_TYPES["png"], MEDIA_TYPES["svg"])
_FORMAT_OF = {media: fmt for fmt, media in MEDIA_TYPES.items()}


def requested_format(suffix: str | None = None) -> str | None:
    """"png" or "svg" when the client asked for a picture (by route suffix or Accept header), else None (JSON)."""
    if suffix:
        return suffix
    if not request.accept_mimetypes:  # no Accept header: JSON
        return None
    best = request.accept_mimetypes.best_match(_OFFERS, default="application/json")
    return _FORMAT_OF.get(best)


def image_response(body: bytes, fmt: str, name: str) -> Response:
    """A rendered chart as the response, named for saving (`name.png`) and shown inline."""
    response = Response(body, status=200, mimetype=MEDIA_TYPES[fmt])
    response.headers["Content-Disposition"] = f'inline; filename="{name}.{fmt}"'
    response.headers["Vary"] = "Accept"
    return response


def json_response(body: dict) -> Response:
    """The JSON answer of a route that also answers pictures (caches must key on Accept)."""
    response = jsonify(body)
    response.headers["Vary"] = "Accept"
    return response


def image_routes(blp: Any, rule: str) -> Callable[[type], type]:
    """Register a view also under `rule.png` and `rule.svg`; its `get` receives `fmt` ("png"/"svg") there."""
    def register(view: type) -> type:
        for fmt in FORMATS:
            blp.route(f"{rule}.{fmt}", defaults={"fmt": fmt})(view)
        return view
    return register
