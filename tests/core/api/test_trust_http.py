"""Trust over HTTP: a generator that contradicts its passage, and a question the
documents do not cover, through /ask, the official ``openai`` client (streamed and
not) and the chat page in a real browser. What streams is exactly the checked answer."""

from __future__ import annotations

import json
import textwrap

import httpx
import pytest
from openai import OpenAI

from ...helpers.servers import chromium, serving

from ..core_plugins import streaming_plugin

pytestmark = pytest.mark.integration


DOCS = {
    "burns.md": """
        # Burns and scalds

        Cool the burn with cool or lukewarm running water for 20 minutes as soon as possible.
        Do not use ice, iced water or any creams or greasy substances like butter.
        Cover the burn loosely with cling film or a clean plastic bag once it has been cooled.
        Get medical help for chemical and electrical burns and for burns larger than the injured person's hand.
    """,
    "sleep.md": """
        # Sleep

        Most adults need 7 to 9 hours of sleep a night, and teenagers need 8 to 10 hours.
        Keep a regular bedtime and wake-up time, even at weekends.
        Avoid caffeine in the six hours before going to bed.
        A cool, dark and quiet bedroom helps most people sleep better.
    """,
    "nosebleeds.md": """
        # Nosebleeds

        Sit down and lean forward, and do not tip your head back.
        Pinch the soft part of the nose just above the nostrils for 10 to 15 minutes.
        Breathe through your mouth while you pinch your nose.
        Go to an emergency department if the bleeding lasts longer than 20 minutes.
    """,
    "hand-hygiene.md": """
        # Hand hygiene

        Wash your hands with soap and water for at least 20 seconds.
        Dry your hands with a clean towel or let them air dry after washing.
        Use a hand sanitiser with at least 60% alcohol when soap is not available.
        Wash your hands before eating and after using the toilet.
    """,
    "dehydration.md": """
        # Dehydration in children

        Signs of dehydration include a dry mouth, fewer wet nappies and unusual drowsiness.
        Give small sips of oral rehydration solution often rather than large drinks.
        Keep breastfeeding or bottle feeding a baby who is dehydrated.
        Seek urgent help if a child has sunken eyes or passes no urine for 12 hours.
    """,
}

# The model "answers" with a claim the passage contradicts, then a supported one.
PIECES = ["Apply ice to the", " burn to cool it [1].", " Cool the burn with", " running water for 20 minutes [1].", " Then see"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from fourfold.api import ApiOptions, create_app
    from fourfold.api.assistants import Assistants
    from fourfold.index import refresh
    from fourfold.plugins import PluginHost
    from fourfold.settings import Settings

    root = tmp_path_factory.mktemp("trust-api")
    (root / "knowledge").mkdir()
    for name, text in DOCS.items():
        (root / "knowledge" / name).write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")
    manifest = root / "clinic.yaml"
    manifest.write_text(textwrap.dedent(f"""
        fourfold: 1
        domain: clinic
        title: Clinic
        knowledge: {{sources: [{{path: knowledge}}]}}
        prompt: {{use: grounded-citations}}
        retrieval: {{use: hybrid, with: {{top_k: 3}}}}
        generation: {{use: piece-generator, with: {{pieces: {json.dumps(PIECES)}}}}}
    """), encoding="utf-8")
    settings = Settings(home=root / "home")
    host = PluginHost(settings)
    host.register(streaming_plugin, name="streaming")
    assistants = Assistants.from_manifests([manifest], host=host, settings=settings)
    refresh(assistants.domains["clinic"])
    app = create_app(assistants=assistants, options=ApiOptions(warm_up=False))

    with serving(app) as url:
        yield {"url": url, "token": assistants.tokens["clinic"].tokens[0]}


def token(served) -> str:
    return served["token"]


def ask(served, question: str, stream: bool):
    headers = {"Authorization": f"Bearer {token(served)}"}
    url = f"{served['url']}/v1/domains/clinic/ask"
    if not stream:
        r = httpx.post(url, json={"question": question}, headers=headers, timeout=120)
        r.raise_for_status()
        return r.json(), None
    deltas, final = [], None
    with httpx.stream("POST", url, json={"question": question, "stream": True}, headers=headers, timeout=120) as r:
        event = None
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = json.loads(line[5:].strip())
                if event == "delta":
                    deltas.append(data["text"])
                elif event == "answer":
                    final = data
    return final, deltas


def test_a_contradicted_claim_never_reaches_the_client(served):
    whole, _ = ask(served, "Should I put ice on a burn?", stream=False)
    streamed, deltas = ask(served, "Should I put ice on a burn?", stream=True)
    for answer in (whole, streamed):
        assert "Apply ice" not in answer["text"] and "Do not use ice" in answer["text"]
        assert "contradiction-removed:1" in answer["flags"]
        replaced = [s for s in answer["sentences"] if s["verdict"] == "replaced"]
        assert replaced and replaced[0]["span"]["text"].startswith("Do not use ice")
    assert "".join(deltas) == streamed["text"] == whole["text"]
    assert not any("Apply ice" in d for d in deltas)


def test_a_question_the_documents_do_not_cover_is_refused(served):
    for stream in (False, True):
        answer, deltas = ask(served, "How do I make a sourdough starter from scratch?", stream)
        assert answer["text"] == "The documents of this assistant do not cover this question."
        assert "not-in-documents" in answer["flags"] and answer["citations"] == []
        assert answer["related"] and not answer["answerability"]["answerable"]
        if stream:
            assert "".join(deltas) == answer["text"]


def test_the_official_openai_client_sees_only_checked_text(served):
    client = OpenAI(base_url=f"{served['url']}/v1", api_key=token(served), max_retries=0, timeout=120)
    messages = [{"role": "user", "content": "Should I put ice on a burn?"}]
    whole = client.chat.completions.create(model="clinic", messages=messages)
    chunks = list(client.chat.completions.create(model="clinic", messages=messages, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    assert "Apply ice" not in streamed and "Do not use ice" in streamed
    refusal = client.chat.completions.create(model="clinic", messages=[{"role": "user", "content": "Who won the Tour de France in 2019?"}])
    assert refusal.choices[0].message.content == "The documents of this assistant do not cover this question."
    assert "not-in-documents" in refusal.model_extra["fourfold"]["flags"]


def test_the_chat_page_shows_a_refusal_and_a_replaced_claim(served):

    with chromium() as browser:
        page = browser.new_page()
        page.goto(served["url"] + "/")
        page.fill("#token", token(served))
        page.click("#token-form button")
        page.wait_for_function("document.querySelector('#domain').value === 'clinic'", timeout=30_000)
        page.fill("#question", "Should I put ice on a burn?")
        page.click("#ask")
        page.wait_for_selector(".turn:nth-child(1) .answer[data-state=done]", timeout=60_000)
        first = page.locator(".turn").nth(0)
        assert "Apply ice" not in first.locator(".answer").inner_text()
        assert "contradicted by the documents" in first.locator(".trust").inner_text()
        first.locator("a.cite").first.click()
        assert "Do not use ice" in first.locator(".citation .support mark").first.inner_text()
        page.fill("#question", "How do I make a sourdough starter from scratch?")
        page.click("#ask")
        page.wait_for_selector(".turn:nth-child(2) .answer[data-state=done]", timeout=60_000)
        second = page.locator(".turn").nth(1)
        assert "Not in the documents" in second.locator(".answer .badge").inner_text()
        assert "related reading" in second.locator(".citations").inner_text()
