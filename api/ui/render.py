"""Templates to responses: one Jinja2 environment (autoescape on for every template) and the
headers every page carries.

The pages run no script: the Content-Security-Policy allows nothing but same-origin styles,
images and forms, so even a name that slipped past escaping could not run.
"""

from __future__ import annotations

import functools

import jinja2
from starlette.responses import HTMLResponse

from api.ui.charts import colour, money

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("api.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    env.filters["colour"] = colour
    return env


def page(template: str, status_code: int = 200, **context) -> HTMLResponse:
    body = environment().get_template(template).render(**context)
    return HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)
