"""``/reports/``: kept reports are listed and served to tokens that may read them."""

from __future__ import annotations

import pytest

from fourfold.reports import save_report


@pytest.fixture(scope="module")
def kept(served):
    made = {}
    for domain in ("legal", "hr", None):
        html = f"<!DOCTYPE html><html><body><h1>report about {domain}</h1><svg class='plot'></svg></body></html>"
        path = save_report(html, {"kind": "advice", "domain": domain}, None, kind="advice", domain=domain, settings=served.settings)
        made[domain] = path.name
    yield made
    for name in made.values():
        path = served.settings.state_dir / "reports" / name
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)


def test_reports_need_a_token(client, kept):
    assert client.get("/reports/").status_code == 401
    response = client.get(f"/reports/{kept['legal']}")
    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_token"
    assert client.get("/reports/", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_token_lists_the_reports_of_its_domain_and_general_ones(client, served, kept):
    listed = client.get("/reports/", headers=served.auth("legal")).json()["reports"]
    names = {r["html"].rsplit("/", 1)[1] for r in listed}
    assert kept["legal"] in names and kept[None] in names and kept["hr"] not in names
    entry = next(r for r in listed if r["domain"] == "legal")
    assert entry["kind"] == "advice" and entry["json"].endswith(".json")


def test_a_report_is_served_to_its_domain_only(client, served, kept):
    page = client.get(f"/reports/{kept['legal']}", headers=served.auth("legal"))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "report about legal" in page.text
    data = client.get(f"/reports/{kept['legal'].replace('.html', '.json')}", headers=served.auth("legal"))
    assert data.status_code == 200 and data.json()["report"]["domain"] == "legal"
    other = client.get(f"/reports/{kept['legal']}", headers=served.auth("hr"))
    assert other.status_code == 403 and other.json()["error"]["code"] == "forbidden_domain"
    assert client.get(f"/reports/{kept[None]}", headers=served.auth("hr")).status_code == 200


@pytest.mark.parametrize("name", ["nothing-here.html", "..%2Fdomains.json", ".hidden.html", "advice-legal.txt"])
def test_unknown_or_hostile_names_are_not_found(client, served, kept, name):
    response = client.get(f"/reports/{name}", headers=served.auth("legal"))
    assert response.status_code == 404
    assert response.json()["error"]["message"]
