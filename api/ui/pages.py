"""The pages under /ui/ (docs/pages.md): overview, hub, group and user.

Each page reads its selection (range and cluster, by the API's parameter rules), asks who the
viewer is (api/ui/access.py), runs the JSON endpoints' statements (api/ui/data.py) and renders
its template. Bad parameters are a 422 page listing every problem; a viewer who may not see a
page gets a 403 page; an unreachable database a 503 page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import quote

import sqlalchemy.exc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api.errors import InvalidParameters, is_unavailable
from api.ui import data, render
from api.ui.access import Viewer, viewer_of
from api.ui.charts import Series, budget_bar, line_chart, money, sparkline, stacked_bars
from api.ui.panels import panel
from api.ui.selection import Selection, app_root, read_selection

log = logging.getLogger("hubcost.api")

# The tables of people on a page show the costliest ones; the CSV link has them all.
PEOPLE_SHOWN = 50
# The overview shows the latest anomalies of its range; the CSV link has them all.
ANOMALIES_SHOWN = 10


def overview(conn, sel: Selection, name: None, viewer: Viewer) -> dict:
    figures = data.overview(conn, sel)
    days = sel.day_list
    return {
        "heading": "Costs",
        "totals": panel(
            "totals",
            "Account and attributable cost per day",
            line_chart,
            days,
            figures.totals,
            sel.csv("/total-costs"),
            note="The account's cost and the part of it attributable to the cluster's hubs.",
        ),
        "components": panel(
            "components",
            "Cost per component per day",
            stacked_bars,
            days,
            figures.components,
            sel.csv("/total-costs-per-component"),
            total=True,
        ),
        "hubs": [(hub, _trend(days, hub)) for hub in figures.hubs],
        "hubs_csv": sel.csv("/total-costs-per-hub"),
        **_budgets_and_anomalies(conn, sel),
    }


def _budgets_and_anomalies(conn, sel: Selection) -> dict:
    as_of = min(sel.days.last, sel.today)
    anomalies = data.anomalies(conn, sel)
    cluster = {} if sel.cluster is None else {"cluster": sel.cluster}
    range_params = {"from": sel.days.first.isoformat(), "to": sel.days.last.isoformat()}
    return {
        "budgets_as_of": as_of,
        "budgets": [(line, _budget_bar(line)) for line in data.budgets(conn, sel)],
        "budgets_csv": sel.root_csv("/budgets", as_of=as_of.isoformat()),
        "anomalies": anomalies[:ANOMALIES_SHOWN],
        "anomalies_found": len(anomalies),
        "anomalies_csv": sel.root_csv("/cost-anomalies", **range_params, **cluster),
    }


def _budget_bar(line: data.BudgetLine):
    label = f"{line.name}: spent {money(line.spent)} of {money(line.amount)}"
    if line.forecast is not None:
        label += f", forecast {money(line.forecast)}"
    return budget_bar(line.spent_ratio, line.forecast_ratio, label=label)


def hub(conn, sel: Selection, name: str, viewer: Viewer) -> dict:
    figures = data.hub(conn, sel, name)
    return {
        "heading": f"Hub {name}",
        "components": panel(
            "components",
            f"Cost of {name} per component per day",
            stacked_bars,
            sel.day_list,
            figures.components,
            sel.csv("/total-costs-per-component", hub=name),
            total=True,
        ),
        "users": figures.users,
        "user_components": _components_of(figures.users),
        "groups": figures.groups,
        "users_csv": sel.csv("/costs-per-user", hub=name),
    }


def group(conn, sel: Selection, name: str, viewer: Viewer) -> dict:
    figures = data.group(conn, sel, name)
    daily = Series(figures.daily.name, figures.daily.values, filled=True)
    return {
        "heading": f"Group {name}",
        "daily": panel(
            "daily",
            f"Cost of group {name} per day",
            line_chart,
            sel.day_list,
            [daily],
            sel.csv("/total-costs-per-group"),
            note="The CSV holds every group's cost per day.",
        ),
        "members": figures.members,
        "member_components": _components_of(figures.members),
        "hubs": figures.hubs,
        "members_csv": sel.csv("/costs-per-user", usergroup=name),
    }


def user(conn, sel: Selection, name: str, viewer: Viewer) -> dict:
    # A viewer who does not see everything sees their costs on their own hub only.
    figures = data.user(conn, sel, name, hub=None if viewer.sees_everything else viewer.hub)
    return {
        "heading": f"User {name}",
        "daily": panel(
            "daily",
            f"Cost of {name} per day, per hub and component",
            stacked_bars,
            sel.day_list,
            figures.series,
            sel.csv("/costs-per-user", user=name),
            total=True,
        ),
        "hubs": figures.hubs,
        "groups": figures.groups,
        "total": sum((h.total for h in figures.hubs), data.ZERO),
    }


def _trend(days, total: data.Total):
    return sparkline(days, total.values, label=f"{total.name}: cost per day")


def _components_of(people: list[data.Total]) -> list[str]:
    seen: list[str] = []
    for person in people:
        seen.extend(c for c in person.components if c not in seen)
    return seen


def may_see(viewer: Viewer, kind: str, name: str | None) -> bool:
    return viewer.sees_everything or (kind == "users" and name == viewer.username)


def serve(request: Request, kind: str, build: Callable, name_param: str | None = None) -> Response:
    """One page: `build(conn, selection, name, viewer)` gives its template's context."""
    viewer = viewer_of(request)
    name = request.path_params[name_param] if name_param else None
    state = request.app.state.hubcost
    root = app_root(request)
    common = {
        "demo": state.settings.demo,
        "viewer": viewer,
        "root": root,
        "kind_path": None if kind == "overview" else kind,
        "name": name,
        "people_shown": PEOPLE_SHOWN,
        "sel": None,
    }
    if not may_see(viewer, kind, name):
        own = None
        if viewer.username is not None:
            own = f"{root}/ui/users/{quote(viewer.username, safe='')}"
        return render.page("forbidden.html", 403, **common, own=own, heading="Not yours to see")
    names = {name_param: name} if name_param else {}
    try:
        with state.connect() as conn:
            sel = read_selection(request, conn, names)
            context = build(conn, sel, name, viewer)
            freshness = data.freshness(conn, sel)
    except InvalidParameters as exc:
        heading = "Bad parameters"
        return render.page("invalid.html", 422, **common, problems=exc.problems, heading=heading)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        if not is_unavailable(exc):
            raise
        log.warning("database unavailable for %s: %s", request.url.path, type(exc).__name__)
        return render.page("unavailable.html", 503, **common, heading="Database unavailable")
    return render.page(f"{kind}.html", **{**common, "sel": sel, "freshness": freshness}, **context)


def _endpoint(kind: str, build: Callable, name_param: str | None = None):
    def endpoint(request: Request) -> Response:
        return serve(request, kind, build, name_param)

    endpoint.__name__ = f"ui_{kind}"
    return endpoint


def ui_routes() -> list[BaseRoute]:
    """The pages and their two static files, for the app's routes."""
    return [
        Route("/ui/", _endpoint("overview", overview), methods=["GET"]),
        Route("/ui/hubs/{hub:path}", _endpoint("hubs", hub, "hub"), methods=["GET"]),
        Route("/ui/groups/{group:path}", _endpoint("groups", group, "group"), methods=["GET"]),
        Route("/ui/users/{user:path}", _endpoint("users", user, "user"), methods=["GET"]),
        Mount("/ui/static", StaticFiles(packages=[("api.ui", "static")]), name="ui-static"),
    ]
