"""The trust checks on their own: contradictions (negation, numbers, opposites) are
never shown as written, unsupported claims are removed, streams carry checked text
only, and answerability refuses what the passages do not cover."""

from __future__ import annotations

import pytest

import fourfold
from fourfold.trust.answerability import Answerability, calibrate, features
from fourfold.trust.checker import AnswerChecker, CheckPolicy, check_answer
from fourfold.trust.text import quantities, sentence_spans


def passage(n: int, text: str, title: str = "") -> fourfold.Passage:
    return fourfold.Passage(fourfold.Chunk(id=str(n), text=text, source=f"doc{n}.md", title=title or f"Doc {n}"), 1.0 / n)


BURNS = passage(1, "Cool the burn with cool or lukewarm running water for 20 minutes. Do not use ice, iced water or any creams or greasy substances like butter.", "Burns and scalds")
SLEEP = passage(2, "Most adults need 7 to 9 hours of sleep a night. Keep a regular bedtime, even at weekends.", "Sleep hygiene")
NOSE = passage(3, "Sit down and lean forward and do not tip your head back. Pinch the soft part of the nose for 10 to 15 minutes.", "Nosebleeds")
PASSAGES = [BURNS, SLEEP, NOSE]


@pytest.mark.parametrize(
    "claim, expected",
    [
        ("Apply cooling with ice to the burn [1].", "Do not use ice"),
        ("Adults need 12 hours of sleep [2].", "7 to 9 hours"),
        ("Lean forward, leaning your head back [3].", "do not tip your head back"),
        ("Pinch the nose for 2 minutes [3].", "10 to 15 minutes"),
    ],
)
def test_a_contradicted_claim_is_replaced_by_the_passage_sentence(claim, expected):
    checked = check_answer("q?", claim, PASSAGES)
    assert expected in checked.text
    assert claim.split(" [")[0] not in checked.text
    assert "contradiction-removed:1" in checked.flags
    assert checked.sentences[0].verdict == "replaced" and checked.sentences[0].passage is not None


def test_consistent_claims_are_kept_with_the_span_that_supports_them():
    checked = check_answer("q?", "Do not use ice on a burn [1]. Most adults need 8 hours of sleep.", PASSAGES)
    assert checked.text == "Do not use ice on a burn [1]. Most adults need 8 hours of sleep [2]."
    span = checked.sentences[1]
    assert span.verdict == "supported" and span.passage == 2
    assert SLEEP.chunk.text[span.start : span.end] == "Most adults need 7 to 9 hours of sleep a night."


def test_an_unsupported_claim_and_an_invented_number_are_removed():
    checked = check_answer("What dose of zelvorax?", "The recommended dose of zelvorax is 12.5 grams per day.", PASSAGES)
    assert "12.5" not in checked.text and checked.refused
    assert "not-in-documents" in checked.flags and "unsupported-removed:1" in checked.flags
    marked = check_answer("q?", "Zelvorax tablets are taken at night with milk.", PASSAGES, CheckPolicy(unsupported="mark"))
    assert marked.text == "Zelvorax tablets are taken at night with milk." and marked.sentences[0].verdict == "unsupported"


def test_a_stream_shows_only_checked_sentences_and_equals_the_final_text():
    raw = "Apply cooling with ice [1]. Cool the burn under running water for 20 minutes [1]. Then rub in some"
    checker = AnswerChecker("burn?", PASSAGES)
    shown = []
    for end in range(1, len(raw) + 1):
        piece = checker.feed(raw[:end])
        assert "Apply cooling" not in piece
        shown.append(piece)
    shown.append(checker.close(raw))
    assert "".join(shown) == checker.text
    assert checker.text.startswith("Do not use ice") and "rub in some" not in checker.text


def test_a_refusal_from_the_model_is_a_refusal():
    checked = check_answer("q?", "The provided documents do not contain the answer. But ice helps.", PASSAGES)
    assert checked.refused and checked.text == CheckPolicy().no_answer and "ice helps" not in checked.text


def test_numbers_and_sentences_are_read_as_written():
    assert [(q.low, q.high, q.unit) for q in quantities("7 to 9 hours, 12.5 mg, 20 minutes [2]")] == [(7, 9, "h"), (12.5, 12.5, "mg"), (20, 20, "min")]
    text = "1. First item.\n2. Second, e.g. this one. Done"
    assert [text[a:b] for a, b in sentence_spans(text)] == ["1. First item.\n", "2. Second, e.g. this one. ", "Done"]
    assert [text[a:b] for a, b in sentence_spans(text, final=False)][-1] == "2. Second, e.g. this one. "


def _corpus():
    topics = {
        "burn": "Cool a burn under running water for twenty minutes. Cover the burn with cling film. Do not burst blisters on a burn.",
        "sleep": "Adults need seven to nine hours of sleep. Avoid caffeine late in the afternoon to sleep well. A dark bedroom helps sleep.",
        "nose": "For a nosebleed, lean forward and pinch the nose. Breathe through the mouth while pinching the nose. Seek help if bleeding lasts.",
        "asthma": "Asthma inhalers relieve wheezing quickly. A preventer inhaler reduces asthma attacks over time. Rinse the mouth after steroid inhalers.",
        "flu": "Flu causes fever, aches and tiredness. Rest and fluids help recovery from flu. Vaccination lowers the risk of flu each winter.",
    }
    chunks = []
    for i, (topic, text) in enumerate(topics.items()):
        for j in range(4):
            chunks.append(fourfold.Chunk(id=f"{i}-{j}", text=text, source=f"{topic}.md", title=topic.title(), heading=f"Part {j}"))
    return chunks


def _lexical_search(chunks):
    from fourfold.trust.text import content_words

    def search(questions):
        out = []
        for q in questions:
            words = content_words(q)
            ranked = sorted(chunks, key=lambda c: -len(words & content_words(c.text + " " + c.title)))[:3]
            out.append([fourfold.Passage(c, float(len(words & content_words(c.text)))) for c in ranked])
        return out

    return search


def test_answerability_is_calibrated_and_refuses_what_no_passage_covers():
    chunks = _corpus()
    search = _lexical_search(chunks)
    calibration, df = calibrate(chunks, search, version="v1")
    decider = Answerability(calibration, df)
    assert calibration.measured["refused_answerable"] <= 0.1
    for question in ("How long should I cool a burn under water?", "What does a preventer inhaler do for asthma?"):
        assert decider.decide(question, search([question])[0]).answerable, question
    for question in ("What is the dose of zelvorax for adults?", "How do I bake sourdough bread?", "Wie backe ich Brot?"):
        decision = decider.decide(question, search([question])[0])
        assert not decision.answerable, (question, decision.to_dict())
    assert features("zelvorax dose?", search(["zelvorax dose?"])[0], df, len(chunks)).missing


def test_singular_and_plural_words_meet():
    """A question about "a dose" for "my dog" is covered by a passage on "doses" for
    "dogs" (short plurals and plurals of words ending in "e" were left unmatched)."""
    from fourfold.trust.text import content_words

    assert content_words("the dose for my dog, a disease, a class") == content_words("doses for dogs, diseases, classes")
    assert content_words("virus") != content_words("virtue")
    dogs = passage(1, "Dogs and cats that are currently vaccinated are kept under observation for 45 days.", "Rabies")
    checked = check_answer("How long is a vaccinated dog watched?", "A vaccinated dog is kept under observation for 45 days [1].", [dogs])
    assert checked.sentences[0].verdict == "supported"


def _quote_closest(question, passages):
    """An extract policy like grounded-citations': the passage sentence sharing most words."""
    from fourfold.trust.text import content_words, split_sentences

    asked = content_words(question)
    best = max(
        ((len(asked & content_words(s)), n, s.strip()) for n, p in enumerate(passages, 1) for s in split_sentences(p.chunk.text)),
        key=lambda x: x[0],
    )
    return f"{best[2][:-1]} [{best[1]}].", [best[1]]


def test_an_amount_alone_is_checked_as_the_answer_to_the_question():
    """"24 hours [3]." is in no way what the nosebleed passage says, although some
    passage may mention 24 hours: the bare amount is not shown as the answer."""
    other = passage(4, "Call for help if a child has had diarrhoea for more than 24 hours.", "Diarrhoea")
    checked = check_answer("How long should I pinch my nose to stop a nosebleed?", "24 hours [4].", [BURNS, SLEEP, NOSE, other])
    assert "24 hours" not in checked.text
    fine = check_answer("How long should I pinch my nose to stop a nosebleed?", "10 to 15 minutes [3].", PASSAGES)
    assert fine.text == "10 to 15 minutes [3]." and fine.sentences[0].verdict == "supported"


def test_an_answer_that_lost_most_of_its_sentences_goes_on_with_the_passages_own_words():
    policy = CheckPolicy(extract=_quote_closest)
    raw = (
        "Cool the burn with running water [1]. Then rub butter into the skin to seal it [1]. "
        "Zelvorax cream heals burns overnight. Wrap the arm in a woollen blanket."
    )
    checked = check_answer("What should I do for a burn?", raw, PASSAGES, policy)
    assert checked.text.startswith("Cool the burn with running water [1].")
    assert "Zelvorax" not in checked.text and "extracted" in checked.flags
    assert "[1]" in checked.text.split("water [1].", 1)[1]  # the quoted evidence, cited
    # An answer that keeps most of what it says is left as it is.
    kept = check_answer("How long should I cool a burn?", "Cool the burn under running water for 20 minutes [1].", PASSAGES, policy)
    assert "extracted" not in kept.flags


def test_a_stream_that_goes_on_with_the_passages_words_still_equals_the_final_text():
    policy = CheckPolicy(extract=_quote_closest)
    raw = "Cool the burn with running water [1]. Zelvorax cream heals burns overnight. Wrap it in wool."
    checker = AnswerChecker("What should I do for a burn?", PASSAGES, policy)
    shown = [checker.feed(raw[:end]) for end in range(1, len(raw) + 1)]
    shown.append(checker.close(raw))
    assert "".join(shown) == checker.text and "extracted" in checker.flags


@pytest.mark.parametrize(
    "question, kind, stated, not_stated",
    [
        ("How long does an EKG take?", "duration", "The entire test will take about 10 minutes.", "You don't need any special steps."),
        ("How long do the obligations last?", "duration", "They last for the term of this Agreement.", "The recipient will immediately give notice."),
        ("How quickly must the material be returned?", "deadline", "Within 7 (seven) business days of the request.", "The material must be returned."),
        ("What dose of sumatriptan should I take?", "dose", "The usual dose is 50 mg.", "There are two ways to treat migraine."),
        ("At what age are tics usually at their worst?", "age", "Tics are worst in the early teens.", "Tics often improve."),
        ("What's the minimum age to use the site?", "age", "The site is not for children under 13 years of age.", "Read our policy."),
        ("How many participants can a mentor advise?", "amount", "Mentors can only advise up to two participants.", "2 Procedure and Terms of Participation"),
        ("How often should I check my blood sugar?", "frequency", "Check it twice a day.", "Check it with a meter."),
        ("Who is most likely to get pseudotumor cerebri?", "who", "It is most common in women aged 20 to 50.", "In some cases it recurs."),
        ("Which state's law governs the NDA?", "place", "It is governed by the laws of the State of Massachusetts.", "Data Boiler Technologies, LLC."),
        ("Which company hosts the platform?", "organisation", "Cirrus Compute Ltd | Cloud hosting", "Hosting is in the cloud."),
        ("When does the syndrome usually develop after starting the drug?", "time", "It develops within the first 2 weeks.", "It is a serious disorder."),
        ("How are service credits calculated?", "calculation", "Service credits are 10% of the monthly fee.", "It applies to the Business plan and above."),
    ],
)
def test_the_kind_of_answer_a_question_asks_for_is_recognised_in_an_answer(question, kind, stated, not_stated):
    assert fourfold.answer_kind(question) == kind
    assert fourfold.states_answer_kind(stated, kind)
    assert not fourfold.states_answer_kind(not_stated, kind)
    assert fourfold.answer_kind("What should I do about a burn?") is None


def test_an_answer_without_the_duration_asked_for_is_refused_not_shown():
    nda = passage(1, "The Receiving Party will immediately give written notice of any unauthorised disclosure. The obligations bind both parties.")
    checker = check_answer("How long do the confidentiality obligations last?", "The Receiving Party will immediately give written notice of any unauthorised disclosure [1].", [nda])
    assert checker.refused and "no-amount" in checker.flags


def test_an_amount_of_another_thing_does_not_answer_the_amount_asked_for():
    # "the limitation period" is not answered by another period the passage states.
    msa = passage(1, "Each party's total liability in any 12 month period is limited to the fees paid. Claims must be notified in writing.")
    assert fourfold.answer_focus("What is the limitation period for bringing a breach of contract claim?") == fourfold.content_words("limitation")
    checker = check_answer(
        "What is the limitation period for bringing a breach of contract claim?",
        "Each party's total liability in any 12 month period is limited to the fees paid [1].",
        [msa],
    )
    assert checker.refused and "no-amount" in checker.flags
    answered = check_answer("What is the liability period?", "Each party's total liability in any 12 month period is limited to the fees paid [1].", [msa])
    assert not answered.refused and "12 month" in answered.text


def test_a_price_or_fee_asked_by_name_is_answered_only_by_a_sentence_naming_it():
    # "the exercise price": a sentence about exercising options that states another
    # number ("two founders", "12 percent") does not answer it.
    sha = passage(1, "The parties are the two founders and any employee who holds shares following the exercise of options. The pool is capped at 12 percent.")
    assert fourfold.answer_focus("What is the exercise price of the options?") == fourfold.content_words("exercise price")
    assert fourfold.answer_focus("How much is the FSRA notification fee?") == fourfold.content_words("notification fee")
    checker = check_answer(
        "What is the exercise price of the options?",
        "The parties are the two founders and any employee who holds shares following the exercise of options [1]. The pool is capped at 12 percent [1].",
        [sha],
    )
    assert checker.refused and "no-amount" in checker.flags
    priced = passage(2, "The exercise price of each option is USD 1.20 per share.")
    answered = check_answer("What is the exercise price of the options?", "The exercise price of each option is USD 1.20 per share [1].", [priced])
    assert not answered.refused and "1.20" in answered.text


def test_the_number_of_a_rule_is_not_an_amount():
    assert not fourfold.states_answer_kind("The requirements contained in COBS 23 protect retail clients.", "amount")
    assert not fourfold.states_answer_kind("Fees are calculated under Rule 7.1.2 for each sub-fund.", "amount")
    assert fourfold.states_answer_kind("The fee is USD 5,000 under Rule 7.1.2.", "amount")
    assert fourfold.states_answer_kind("Leverage is capped at 30 times.", "amount")


def test_a_question_asking_which_country_is_refused_when_no_sentence_names_one():
    guide = passage(1, "Our contracts are governed by the law of Northwind's home jurisdiction, with exclusive jurisdiction of its courts.")
    checker = check_answer(
        "Which country is Northwind's home jurisdiction?",
        "Our contracts are governed by the law of Northwind's home jurisdiction, with exclusive jurisdiction of its courts [1].",
        [guide],
    )
    assert checker.refused and "no-place" in checker.flags
    nda = passage(2, "This Agreement is governed by the laws of the State of Massachusetts.")
    answered = check_answer("Which state's law governs the NDA?", "This Agreement is governed by the laws of the State of Massachusetts [1].", [nda])
    assert not answered.refused and "Massachusetts" in answered.text


def test_a_stretch_of_a_negated_sentence_is_not_a_quote_of_it():
    # Word for word inside the passage, but the passage says the opposite.
    aspirin = passage(1, "Do not give aspirin to children under 16 years old. Paracetamol is suitable for children.")
    checker = check_answer("Can I give my child aspirin?", "Give aspirin to children under 16 years old [1].", [aspirin])
    assert "Give aspirin to children" not in checker.text
    assert any(s.verdict in ("replaced", "contradicted") for s in checker.sentences)
    quoted = check_answer("Can I give my child aspirin?", "Do not give aspirin to children under 16 years old [1].", [aspirin])
    assert quoted.sentences[0].verdict == "supported" and "Do not give aspirin" in quoted.text


def test_a_reassurance_no_passage_gives_is_removed():
    salt = passage(1, "Adults should eat less than 6 grams of salt a day. High blood pressure is diagnosed when readings are consistently 140/90 or higher.")
    checker = check_answer(
        "I have high blood pressure. Is 10 grams of salt a day fine?",
        "Yes, it's perfectly fine for you to have a blood pressure reading of 140/90 or higher [1]. Adults should eat less than 6 grams of salt a day [1].",
        [salt],
    )
    assert "perfectly fine" not in checker.text and "less than 6 grams" in checker.text
    assert any(s.verdict == "unsupported" for s in checker.sentences)


def test_a_bare_yes_or_no_is_shown_only_with_a_checked_sentence_after_it():
    fasting = passage(1, "You usually do not need to fast before a cholesterol test.")
    alone = check_answer("Should I rinse my mouth after brushing?", "The answer to this question is no.", [fasting])
    assert "answer to this question is no" not in alone.text.lower()
    with_reason = check_answer("Do I have to fast before my cholesterol test?", "No. You usually do not need to fast before a cholesterol test [1].", [fasting])
    assert with_reason.text.startswith("No.") and "do not need to fast" in with_reason.text


def test_a_question_about_a_named_case_no_passage_holds_is_not_answerable():
    from fourfold.trust.answerability import DEFAULT, Answerability

    parties = passage(1, "Northwind Analytics Ltd is a fictional company. Cirrus Compute Ltd hosts the Northwind Insight platform.")
    decider = Answerability(DEFAULT, {"northwi": 3, "cirrus": 1}, threshold=0.0)  # would answer anything
    decision = decider.decide("What did the court decide in Northwind Analytics Ltd v Cirrus Compute Ltd (2023)?", [parties])
    assert not decision.answerable and "Northwind Analytics Ltd v Cirrus Compute Ltd" in decision.features.missing
    held = passage(2, "In Northwind Analytics Ltd v. Cirrus Compute Ltd the court held that the cap applied.")
    assert decider.decide("What did the court decide in Northwind Analytics Ltd v Cirrus Compute Ltd?", [held]).answerable
