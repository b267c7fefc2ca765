"""The HTTP app: the page, and the JSON/HTTP API it uses (models, translate, generate, health)."""

from __future__ import annotations

import base64
import contextlib
import hmac
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pixmorph.serving.errors import ServeError
from pixmorph.serving.jobs import PROGRESS_ID, ClientGone, ProgressBoard, Ticket, WorkQueue
from pixmorph.serving.limits import Limits, decode, open_upload
from pixmorph.serving.models import JobContext, ServedModel

log = logging.getLogger(__name__)
STATIC = resources.files("pixmorph.serving") / "static"
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small fields around the image
# the page loads nothing from elsewhere; results are blob: URLs
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
        b"script-src 'self'; connect-src 'self' blob:; frame-ancestors 'none'",
    ),
]

Scope = dict[str, Any]
ASGI = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Any]


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON body of every refusal: {"error": message, "status": status}."""
    return JSONResponse({"error": message, "status": status}, status, headers=headers)


class Guard:
    """ASGI middleware: the token on /api/* (health excepted), a body limit, security headers."""

    def __init__(self, app: ASGI, token: str | None, body_limit: int) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        headers = dict(scope["headers"])
        if self.token and path.startswith("/api/") and path != "/api/health":
            given = headers.get(b"authorization", b"").removeprefix(b"Bearer ").strip()
            if not hmac.compare_digest(given, self.token):
                response = error(
                    401,
                    "this server needs its token: send the header 'Authorization: Bearer TOKEN' "
                    "(on the page: open it as http://HOST:PORT/#token=TOKEN)",
                )
                return await response(scope, receive, send)
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.body_limit:
            # refused before a byte of the body is read
            response = error(413, self.too_large(f"the request is {int(length)} bytes"))
            return await response(scope, receive, send)
        received = 0

        async def receive_with_limit() -> dict[str, Any]:
            # a body sent without a length (chunked) is counted as it arrives
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.body_limit:
                raise ServeError(413, self.too_large("the request is larger"))
            return message

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive_with_limit, send_with_headers)

    def too_large(self, what: str) -> str:
        return (
            f"{what}; this server takes uploads of at most {self.body_limit - FORM_OVERHEAD} "
            "bytes (pixmorph serve --max-upload-mb)"
        )


class Api:
    """The routes, over a fixed set of served models."""

    def __init__(self, models: dict[str, ServedModel], limits: Limits, queue: WorkQueue) -> None:
        self.models = models
        self.limits = limits
        self.queue = queue
        self.progress = ProgressBoard()

    def model(self, name: str | None) -> ServedModel:
        """A served model by name (looked up, never used as a path); None: the only one."""
        if not name:
            if len(self.models) == 1:
                return next(iter(self.models.values()))
            raise ServeError(400, f"several models are served; name one of {self.names()}")
        try:
            return self.models[name]
        except KeyError:
            raise ServeError(
                404, f"no model {name!r} is served; choose one of {self.names()}"
            ) from None

    def names(self) -> str:
        return ", ".join(self.models)

    async def page(self, request: Request) -> Response:
        html = (STATIC / "index.html").read_bytes()
        return Response(html, media_type="text/html; charset=utf-8")

    async def health(self, request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "models": len(self.models),
                "busy": self.queue.busy,
                "capacity": self.queue.capacity,
            }
        )

    async def list_models(self, request: Request) -> Response:
        return JSONResponse(
            {
                "models": [m.describe() for m in self.models.values()],
                "limits": {
                    "max_bytes": self.limits.max_bytes,
                    "max_pixels": self.limits.max_pixels,
                    "max_styles": self.limits.max_styles,
                },
            }
        )

    async def get_progress(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        found = self.progress.get(job_id)
        if found is None:
            raise ServeError(404, f"no job {job_id!r} is known (ids are kept for recent jobs only)")
        return JSONResponse(found)

    async def form(self, request: Request) -> dict[str, Any]:
        """The request's fields: a multipart form or, for generate, a JSON object."""
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            try:
                body = json.loads(await request.body())
            except ValueError:
                raise ServeError(400, "the JSON body could not be parsed") from None
            if not isinstance(body, dict):
                raise ServeError(400, "the JSON body must be an object of options")
            return body
        if not ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            raise ServeError(
                415, "send a multipart form (curl -F image=@photo.png) or, for generate, JSON"
            )
        try:
            form = await request.form(max_files=1, max_fields=16)
        except ServeError:
            raise  # the body limit
        except Exception as e:  # malformed multipart, too many parts
            raise ServeError(400, f"the form could not be read ({e})") from None
        return dict(form)

    async def translate(self, request: Request) -> Response:
        ticket = self.queue.admit()  # before the body is read: memory stays bounded
        try:
            return await self._translate(request, ticket)
        finally:
            ticket.close()

    async def _translate(self, request: Request, ticket: Ticket) -> Response:
        fields = await self.form(request)
        model = self.model(_text(fields, "model"))
        upload = fields.get("image")
        if not isinstance(upload, UploadFile):
            raise ServeError(400, "send the image as the file field 'image' (-F image=@photo.png)")
        data = await upload.read(self.limits.max_bytes + 1)
        image = open_upload(data, self.limits)
        direction = _text(fields, "direction")
        styles = _int(fields, "styles", 1, 1, self.limits.max_styles)
        style_seed = _int(fields, "style_seed", None, 0, 2**31 - 1)
        model.translator(direction)  # an unknown direction is refused before queueing
        job_id = _progress_id(fields)
        job = JobContext(progress=lambda d, t: self.progress.set(job_id, "running", d, t))
        self.progress.set(job_id, "queued")

        def work() -> list[Image.Image]:
            self.progress.set(job_id, "running")
            return model.translate(decode(image), direction, styles, style_seed, job)

        t0 = time.perf_counter()
        outputs = await self._run(work, job, request, job_id, ticket)
        headers = {
            "X-Pixmorph-Model": model.name,
            "X-Pixmorph-Seconds": f"{time.perf_counter() - t0:.3f}",
        }
        if len(outputs) == 1:
            return Response(png_bytes(outputs[0]), media_type="image/png", headers=headers)
        images = [base64.b64encode(png_bytes(o)).decode() for o in outputs]
        return JSONResponse({"images_png_base64": images}, headers=headers)

    async def generate(self, request: Request) -> Response:
        ticket = self.queue.admit()
        try:
            return await self._generate(request, ticket)
        finally:
            ticket.close()

    async def _generate(self, request: Request, ticket: Ticket) -> Response:
        fields = await self.form(request)
        model = self.model(_text(fields, "model"))
        seed = _int(fields, "seed", 0, 0, 2**31 - 1)
        truncation = _float(fields, "truncation", 1.0, 0.0, 2.0)
        job = JobContext()

        def work() -> Image.Image:
            return model.generate(seed, truncation, job)

        output = await self._run(work, job, request, None, ticket)
        return Response(
            png_bytes(output), media_type="image/png", headers={"X-Pixmorph-Model": model.name}
        )

    async def _run(
        self,
        work: Callable[[], Any],
        job: JobContext,
        request: Request,
        job_id: str | None,
        ticket: Ticket,
    ) -> Any:
        try:
            result = await self.queue.run(work, job, request.is_disconnected, ticket=ticket)
        except ClientGone:
            self.progress.set(job_id, "cancelled")
            raise
        except ServeError:
            self.progress.set(job_id, "failed")
            raise
        self.progress.set(job_id, "done", 1, 1)
        return result


def png_bytes(img: Image.Image) -> bytes:
    """A PNG of a result, written fast (results are large; clients rarely keep them)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _text(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ServeError(400, f"the field {name!r} must be text, not a file")
    return value


def _int(fields: dict[str, Any], name: str, default: Any, low: int, high: int) -> Any:
    text = fields.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ServeError(400, f"the field {name!r} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise ServeError(400, f"the field {name!r} must be in {low}..{high}, got {value}")
    return value


def _float(fields: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    text = fields.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ServeError(400, f"the field {name!r} must be a number, got {text!r}") from None
    if not low <= value <= high:
        raise ServeError(400, f"the field {name!r} must be in {low}..{high}, got {value}")
    return value


def _progress_id(fields: dict[str, Any]) -> str | None:
    job_id = _text(fields, "progress_id")
    if job_id is not None and not PROGRESS_ID.fullmatch(job_id):
        raise ServeError(400, "progress_id must be 1-64 letters, digits, '-' or '_'")
    return job_id


def create_app(
    models: dict[str, ServedModel],
    limits: Limits | None = None,
    token: str | None = None,
    workers: int = 1,
    queue_size: int = 8,
) -> Starlette:
    """The server app for these models; every API answer but a PNG is JSON."""
    if not models:
        raise ValueError("create_app needs at least one model")
    api = Api(models, limits or Limits(), WorkQueue(workers, queue_size))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        api.queue.shutdown()

    async def on_serve_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServeError)
        return error(exc.status, exc.message, exc.headers)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def on_client_gone(request: Request, exc: Exception) -> Response:
        return error(499, "the client closed the connection")  # nobody reads this

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("request %s %s failed", request.method, request.url.path)
        return error(500, f"the server failed on this request ({type(exc).__name__}); see its log")

    routes = [
        Route("/", api.page),
        Route("/api/health", api.health),
        Route("/api/models", api.list_models),
        Route("/api/translate", api.translate, methods=["POST"]),
        Route("/api/generate", api.generate, methods=["POST"]),
        Route("/api/progress/{job_id}", api.get_progress),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ServeError: on_serve_error,
            HTTPException: on_http_error,
            ClientGone: on_client_gone,
            Exception: on_crash,
        },
        lifespan=lifespan,
    )
    app.state.api = api
    app.add_middleware(Guard, token=token, body_limit=api.limits.max_bytes + FORM_OVERHEAD)
    return app
