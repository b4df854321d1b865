"""Swagger UI at /docs and Redoc at /redoc, working without internet access: their scripts
and styles are served by the service itself, from the pinned `fastapi-offline` package (which
follows swagger-ui-dist and redoc's releases), never from a CDN. Swagger's Authorize signs in
with an email and a password through the document's OAuth2 password flow."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

# Redoc's sidebar footer shows Redocly's logo from their CDN, whatever the options: it is drawn
# from an empty image in the page instead, so that opening /redoc asks nothing of the internet.
REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"

SWAGGER_UI_PARAMETERS = {
    # The validator badge asks an outside service about the document: nothing leaves.
    "validatorUrl": None,
    "displayRequestDuration": True,
}


@cache
def redoc_script() -> bytes:
    script = (files("fastapi_offline") / "static" / "redoc.standalone.js").read_bytes()
    return script.replace(REDOC_CDN_LOGO, EMPTY_IMAGE)


def install_docs(app: FastAPI, *, openapi_url: str) -> None:
    title = app.title

    @app.get(
        f"{ASSETS_URL}/redoc.standalone.js", operation_id="redocScript", include_in_schema=False
    )
    async def redoc_standalone() -> Response:
        headers = {"Cache-Control": "public, max-age=3600"}
        return Response(redoc_script(), media_type="text/javascript", headers=headers)

    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS_URL, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get(DOCS_URL, operation_id="swaggerUi", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title}: Swagger UI",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @app.get(OAUTH2_REDIRECT_URL, operation_id="swaggerUiOauth2Redirect", include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, operation_id="redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title}: Redoc",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
