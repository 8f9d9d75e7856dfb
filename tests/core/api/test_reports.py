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


def _record(folder, stem: str, domain: str | None) -> None:
    (folder / f"{stem}.json").write_text(f'{{"report": {{"kind": "advice", "domain": {"null" if domain is None else repr(domain).replace(chr(39), chr(34))}}}}}')


@pytest.fixture
def planted(served, kept):
    """Links planted in the reports folder by someone who can write there."""
    folder = served.settings.state_dir / "reports"
    made = []

    def plant(stem: str, target, *, hard: bool = False, domain: str | None = None, link_record=None):
        html = folder / f"{stem}.html"
        if hard:
            html.hardlink_to(target)
        else:
            html.symlink_to(target)
        if link_record is not None:
            (folder / f"{stem}.json").symlink_to(link_record)
        else:
            _record(folder, stem, domain)
        made.extend([html, folder / f"{stem}.json"])
        return html.name

    yield plant
    for path in made:
        path.unlink(missing_ok=True)


def test_a_symlink_to_a_file_outside_is_not_served(client, served, planted, tmp_path):
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    name = planted("advice-evil-20260101T000000", secret)
    response = client.get(f"/reports/{name}", headers=served.auth("hr"))
    assert response.status_code == 404 and "root:x:0:0" not in response.text
    listed = client.get("/reports/", headers=served.auth("hr")).json()["reports"]
    assert name not in {r["html"].rsplit("/", 1)[1] for r in listed}


def test_an_alias_of_another_domains_report_does_not_open_with_the_wrong_token(client, served, kept, planted):
    folder = served.settings.state_dir / "reports"
    legal = folder / kept["legal"]
    for name in (
        planted("advice-alias-20260101T000001", legal, domain="hr"),  # symlink, record claims hr
        planted("advice-alias-20260101T000002", legal, hard=True, domain=None),  # hard link, general record
        planted("advice-alias-20260101T000003", folder / kept["hr"], link_record=legal.with_suffix(".json")),
    ):
        for token in ("hr", "legal"):
            response = client.get(f"/reports/{name}", headers=served.auth(token))
            assert response.status_code == 404, (name, token)
            assert "report about legal" not in response.text
    # A hard link cannot be told from the original: while the second name exists,
    # neither is served; once it is gone, the report opens with its own token again.
    assert client.get(f"/reports/{kept['legal']}", headers=served.auth("legal")).status_code == 404
    (folder / "advice-alias-20260101T000002.html").unlink()
    assert client.get(f"/reports/{kept['legal']}", headers=served.auth("legal")).status_code == 200
