"""The FastAPI application of ``w2v2 serve``: ``POST /transcribe``, ``GET /health``, ``/info``, ``/``."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from ..data.audio import SAMPLE_RATE
from .limits import RequestError, json_safe
from .service import Service
from .upload import FILE_FIELD, check_declared_length, decode_upload, limited_receive
from .worker import Result, Ticket


def page() -> str:
    """The self-contained web page (inline CSS and JS)."""
    return files(__package__).joinpath("page.html").read_text(encoding="utf-8")


def request_fields(service: Service, request: Request, form: FormData) -> dict[str, str]:
    """The decoder fields of the query string and the form (the form wins); unknown ones are refused."""
    fields = dict(request.query_params)
    fields.update({k: v for k, v in form.multi_items() if k != FILE_FIELD and isinstance(v, str)})
    unknown = sorted(set(fields) - set(service.decoders.fields))
    if unknown:
        raise RequestError(400, f"unknown field(s) {', '.join(unknown)} (known: {FILE_FIELD}, "
                                f"{', '.join(service.decoders.fields)})")
    return fields


def uploaded_file(form: FormData) -> UploadFile:
    files_ = form.getlist(FILE_FIELD)
    if not files_:
        raise RequestError(400, f"missing form field '{FILE_FIELD}' (the audio file to transcribe)")
    if len(files_) > 1 or not isinstance(files_[0], UploadFile):
        raise RequestError(400, f"form field '{FILE_FIELD}' must be one file upload (a part with a filename)")
    return files_[0]


async def transcribe_request(service: Service, request: Request, ticket: Ticket) -> tuple[Result, dict, float]:
    """Read, check and queue one upload; the transcript, its decoder settings and the duration."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise RequestError(415, f"expected a multipart/form-data upload with the audio in field '{FILE_FIELD}' "
                                f"(got Content-Type {content_type or 'none'!r})")
    check_declared_length(request.headers.get("content-length"), service.limits)
    limited = Request(request.scope, limited_receive(request.receive, service.limits))
    form = await limited.form(max_files=1, max_fields=len(service.decoders.fields))
    try:
        upload = uploaded_file(form)
        settings = service.decoders.settings(request_fields(service, request, form))
        wave = await run_in_threadpool(decode_upload, upload.file, upload.filename or "", service.limits,
                                       service.min_samples)
    finally:
        await form.close()
    result = await asyncio.wrap_future(service.queue.submit(wave, settings, ticket))
    return result, settings, len(wave) / SAMPLE_RATE


def create_app(service: Service) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        service.queue.start()
        yield
        service.queue.stop()

    app = FastAPI(title="w2v2 serve", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.exception_handler(RequestError)
    async def refused(_: Request, e: RequestError) -> JSONResponse:
        return JSONResponse({"detail": e.message}, status_code=e.status, headers=e.headers)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(page())

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "pending": service.queue.pending, "max_pending": service.limits.max_pending}

    @app.get("/info")
    async def info() -> dict:
        return service.info()

    @app.post("/transcribe")
    async def transcribe(request: Request) -> JSONResponse:
        start = time.perf_counter()
        ticket = service.queue.admit()
        try:
            result, settings, duration = await transcribe_request(service, request, ticket)
        finally:
            ticket.drop()
        total = time.perf_counter() - start
        return JSONResponse(json_safe({
            **result.transcript.to_dict(), "duration": duration, "decoder": settings,
            "timing": {"queue": result.queue_seconds, "decode": result.decode_seconds, "total": total,
                       "rtf": result.decode_seconds / duration, "batch": result.batch_size}}))

    return app
