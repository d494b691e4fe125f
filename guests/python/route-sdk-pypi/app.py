"""Fixture: a Python route on the SDK that imports a package from PyPI,
python-dateutil (pinned in requirements-plugin.txt, installed into `.deps/`
and built into the component). `GET /pypi/add-months?date=D&months=N` adds
calendar months the way dateutil's `relativedelta` does (the 31st of a month
plus one month is the last day of the next); a date it cannot parse is a 400.
"""

# dateutil ships no type hints (its stubs are types-python-dateutil).
from dateutil.parser import isoparse  # type: ignore[import-untyped]
from dateutil.relativedelta import relativedelta  # type: ignore[import-untyped]

from corral import HttpError, Request, Response, Routes

app = Routes("py-pypi", "1.0.0")


@app.get("/pypi/add-months")
def add_months(request: Request) -> Response:
    date, months = request.query.get("date", [""])[0], request.query.get("months", ["0"])[0]
    try:
        start = isoparse(date).date()
    except ValueError as error:
        raise HttpError(400, "invalid_date", f"{date!r} is not an ISO 8601 date: {error}") from None
    return Response.json({"date": (start + relativedelta(months=int(months))).isoformat()})


WitWorld, HttpHandler = app.exports()
