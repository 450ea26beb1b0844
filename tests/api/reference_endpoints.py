"""The endpoints hubcost must serve, with their query parameters (docs/api.md §6, §7).

This is the list of jupyterhub-cost-monitoring's API, which existing dashboards call; the paths
and parameter names are fixed. Each path maps to its query parameters, in the order that API
documents them. Every endpoint with parameters may also answer 422 (docs/api.md §4).
"""

from __future__ import annotations

DATES = ("from", "to")

REFERENCE_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "/": (),
    "/health/ready": (),
    "/hub-names": DATES,
    "/component-names": (),
    "/total-costs": DATES,
    "/user-groups": (*DATES, "hub", "username", "usergroup"),
    "/users-with-multiple-groups": ("hub_name", "user_name"),
    "/users-with-no-groups": ("hub_name", "user_name"),
    "/total-costs-per-hub": DATES,
    "/total-costs-per-component": (*DATES, "hub", "component"),
    "/total-costs-per-group": DATES,
    "/costs-per-user": (*DATES, "hub", "component", "user", "usergroup", "limit"),
    "/total-usage": (*DATES, "hub", "component", "user"),
}
