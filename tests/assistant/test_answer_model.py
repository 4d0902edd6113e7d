"""The answer models: each named feature (sentence and question level), the labels of the fit, the threshold rule,
save/load, and the compound question choice of the extractive answerer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.answer import AnswerRequest, ExtractiveAnswerer, repeats
from assistant.answer_model import (
    FEATURES,
    FORMAT_VERSION,
    QUESTION_C_GRID,
    QUESTION_FEATURES,
    AnswerModel,
    AnswerModels,
    Candidate,
    QuestionRecord,
    answers_reference,
    featurize,
    fit,
    fit_both,
    fit_floor,
    fit_near_tie_ratio,
    holds_number,
    idf_overlap,
    missing_share,
    near_tie_set,
    question_decades,
    question_features,
    question_names,
    question_numbers,
    question_years,
    quoted_count,
    threshold_for,
)
from assistant.answer_types import analyse

ZH_1950 = "1950 年,纽约州率先部分采纳谨慎人规则,允许养老金投资高达 35% 的权益资产(如股票)。"
EN_1940 = "In the 1940s, states began to discuss the prudent man rule."


def candidate(text: str, cosine: float = 0.5, language: str = "en", position: int = 0, passage_text: str = "",
              passage_rank: int | None = 0, **extra) -> Candidate:
    return Candidate(sentence_id=f"s{hash(text) % 1000}", document="doc", chunk_id="c", start=0, end=len(text),
                     text=text, language=language, position=position, context="", title="A title", cosine=cosine,
                     passage_text=passage_text or text, passage_score=0.6 if passage_rank is not None else 0.0,
                     passage_rank=passage_rank, **extra)


def features_of(question: str, *texts: str, **kwargs) -> list[dict[str, float]]:
    candidates = [candidate(t, **kwargs) for t in texts]
    featurize(analyse(question), question, candidates, 0.7, {})
    return [c.features for c in candidates]


def test_every_named_feature_is_computed():
    (features,) = features_of("When did New York adopt the rule?", EN_1940)
    assert set(features) == set(FEATURES)


def test_type_features_prefer_the_sentence_with_the_asked_kind_of_fact():
    date, none = features_of("When did New York adopt the prudent man rule?",
                             "New York adopted the prudent man rule in 1950.", "New York adopted the prudent man rule.")
    assert date["type_match"] == 1.0 and date["type_miss"] == 0.0
    assert none["type_match"] == 0.0 and none["type_miss"] == 1.0
    (asked_nothing,) = features_of("Tell me about the rule", "New York adopted the rule.")
    assert asked_nothing["type_asked"] == 0.0 and asked_nothing["type_miss"] == 0.0


def test_a_noun_for_a_kind_of_person_answers_who_but_not_a_question_for_a_name():
    opposed = "这一改变引发了较大争议,反对者(主要是精算师和工会)认为,股票投资重蹈 1929 年股灾覆辙。"
    (who,) = features_of("Who opposed pension stock investing after the Depression?", opposed)
    (name,) = features_of("What are the names of the people who opposed pension stock investing?", opposed)
    assert who["type_match"] == 1.0 and name["type_match"] == 0.0


def test_numbers_and_names_the_question_pins_down_must_be_in_the_evidence():
    assert question_numbers("What did the order say about 401(k) plans in 1995?") == {"1995"}
    (f,) = features_of("What did the order say about 401(k) plans in 1995?", "The order covers 401(k) plans.")
    assert f["numbers_missing"] == 1.0 and f["names_missing"] == 0.0
    assert "Vanguard" in question_names("Which company, Vanguard or Fidelity, offered it?")
    assert missing_share({"Vanguard", "Fidelity"}, "Fidelity offered it.") == 0.5
    (g,) = features_of("Did Vanguard offer the first 401(k) plan?", "Johnson Companies offered the first plan.")
    assert g["names_missing"] > 0


def test_a_code_such_as_401k_is_a_name_not_a_number_however_it_is_written():
    """Users write "401k" as often as the statutes write "401(k)": both name the plan, and a sentence about defined
    contribution plans that never says "401" still answers a question about a 401k."""
    for question in ("who gains more from private equity in their 401k", "who gains more in their 401(K)?",
                     "在 401(k) 计划里谁承担亏损?"):
        assert question_numbers(question) == set()
        assert "401(k)" in question_names(question)
    assert question_names("401K 和 403b 有什么不同") >= {"401(k)", "403(b)"}
    assert question_numbers("people in their 30s") == {"30"}  # a plural, not a code
    assert question_numbers("section 1104(a)(1)(B)") == {"1104", "1"}  # a provision's parts stay numbers
    (f,) = features_of("how much more do younger savers gain from private equity in their 401k?",
                       "Younger cohorts benefit more relative to older cohorts from an allocation to private equity.")
    assert f["numbers_missing"] == 0.0
    (g,) = features_of("what does a 401k let employees do?", "A 401(k) plan lets employees defer part of their pay.")
    assert g["names_missing"] == 0.0  # "401k" is found as "401(k)"


def test_a_decade_the_question_names_is_held_by_any_year_of_it():
    """"In the 1930s" is answered by "1935 年", and "the end of the 1920s" by 1929: the decade is not the year 1930."""
    assert question_decades("what law came in the 1930s?")[0] == {"1930s"}
    assert question_numbers("how bad did it get during the 1930’s slump") == {"1930s"}
    assert question_years("北卡罗来纳州在 1970 年代把上限提高到了多少?") == {"1970s"}
    assert question_numbers("上世纪 30 年代美国出台了哪部法律?") == {"1930s"}  # not the number 30
    assert question_numbers("本世纪 20 年代的 401(k) 计划") == {"2020s"}
    assert question_numbers("what happened in the '50s") == {"1950s"}
    assert question_numbers("people in their 30s") == {"30"}  # an age, not a decade
    assert question_numbers("EO 14330 in 1930") == {"14330", "1930"}


def test_a_number_is_read_with_thousands_in_groups_of_three_and_not_from_an_identifier():
    assert question_numbers("根据表 E1,2023 年固定收益计划总数是多少?") == {"2023"}  # not "1,2023"
    assert question_numbers("1950,35% 这个数字对吗") == {"1950", "35"}
    assert question_numbers("Table E19: were there 1,234,567 participants, or 2.5 million?") == {"1,234,567", "2.5"}
    assert holds_number("1930s", "1935 年,《社会保障法》出台") and holds_number("1920s", "1929 年 10 月的股灾")
    assert holds_number("1950s", "(1940s-1950s)")
    assert not holds_number("1930s", "19,300 plans") and not holds_number("1930s", "1940 年")
    (held, not_held) = features_of("Which law came in the 1930s?", "The Social Security Act came in 1935.",
                                   "ERISA came in 1974.")
    assert held["years_missing"] == 0.0 and not_held["years_missing"] == 1.0


def test_a_year_the_question_names_is_looked_for_in_the_sentence_itself():
    """A table's rows share their passage: only the row of the asked year holds it."""
    assert question_years("In Table E1, in 1984, how many plans?") == {"1984"}
    assert question_years("根据表 E1,2023 年计划总数是多少?") == {"2023"}
    assert question_years("1,984 plans under EO 14330 and section 1104") == set()
    table = "1984 17,303 7,526\n1994 174,945 25,062"
    asked, other = features_of("How many plans were there in 1984?", "1984 17,303 7,526",
                               "1994 174,945 25,062", passage_text=table)
    assert asked["years_missing"] == 0.0 and other["years_missing"] == 1.0
    assert other["numbers_missing"] == 0.0  # the passage holds 1984: only the sentence-level feature tells them apart
    (none_asked,) = features_of("How many plans were there?", "1994 174,945 25,062")
    assert none_asked["years_missing"] == 0.0


def test_cosine_gap_rank_position_heading_language_and_overlap():
    a, b = features_of("When did New York adopt the rule?", "New York adopted the rule in 1950.", "A heading")
    assert a["cosine_gap"] == 0.0 and a["cosine_rank_inv"] in (1.0, 0.5)
    assert b["heading_like"] == 1.0 and a["heading_like"] == 0.0
    (zh,) = features_of("When did New York adopt the rule?", ZH_1950, language="zh")
    assert zh["cross_language"] == 1.0
    (far,) = features_of("When?", "A sentence far down the passage.", position=4)
    assert far["position_inv"] == pytest.approx(0.2)
    assert idf_overlap({"york", "rule"}, "New York adopted it.", {"york": 3.0, "rule": 1.0}) == pytest.approx(0.75)
    # overlap counts a word in another number or in the other language (养老金: pension)
    assert idf_overlap({"pensions", "rules"}, "纽约州的养老金规则", {}) == pytest.approx(1.0)


def test_a_follow_ups_gap_is_measured_from_the_question_alone():
    """The previous topic's sentence leads on the query's cosine; the follow-up's own cosine can rank it behind."""
    previous, asked = candidate("New York adopted the rule in 1950.", cosine=0.6, question_cosine=0.3), \
        candidate("Actuaries and unions opposed it.", cosine=0.5, question_cosine=0.45)
    featurize(analyse("Who opposed it?"), "Who opposed it?", [previous, asked], 0.7, {})
    assert previous.features["cosine_gap"] == 0.0 and asked.features["cosine_gap"] == pytest.approx(-0.1)
    assert asked.features["question_cosine_gap"] == 0.0
    assert previous.features["question_cosine_gap"] == pytest.approx(-0.15)
    # without history the question is the query: the two gaps are one
    (plain,) = features_of("Who opposed it?", "Actuaries and unions opposed it.", cosine=0.4)
    assert plain["question_cosine_gap"] == plain["cosine_gap"] == 0.0


def test_a_sentence_from_the_sentence_index_only_has_no_passage_score():
    (f,) = features_of("When?", "New York adopted the rule in 1950.", passage_rank=None)
    assert f["passage_score"] == 0.0 and f["passage_rank_inv"] == 0.0


def test_labels_match_the_answering_sentence_not_its_neighbour():
    contexts = ["允许养老金投资高达 35% 的权益资产"]
    assert answers_reference(ZH_1950, contexts)
    assert not answers_reference("这标志着从「法律清单」向灵活投资的转变。", contexts)
    assert answers_reference("高达 35% 的权益资产(如股票)。", contexts)  # a sentence cut at a passage end
    assert not answers_reference(ZH_1950, [])


def test_threshold_keeps_false_abstention_within_the_target():
    best = [0.9, 0.8, 0.7, 0.2, 0.95] * 20  # 100 answerable questions, 20 of them at 0.2
    t = threshold_for(best, 0.03)
    assert sum(b < t for b in best) / len(best) <= 0.03
    assert threshold_for(sorted(np.linspace(0.1, 0.9, 100)), 0.0) <= 0.1


def test_a_near_tie_set_holds_the_sentences_the_model_cannot_tell_from_the_best():
    assert near_tie_set([0.9, 0.85, 0.3], 0.9, 3) == 2  # 0.85 is within 0.9 x 0.9 of the best
    assert near_tie_set([0.9, 0.85, 0.3], 1.0, 3) == 1
    assert near_tie_set([0.9, 0.85, 0.8, 0.8], 0.0, 3) == 3  # never above the limit
    assert near_tie_set([0.2], 0.5, 3) == 1 and near_tie_set([], 0.5, 3) == 0


def test_the_quoted_count_uses_the_fitted_ratio_and_the_answer_length_it_was_fit_for():
    fitted = AnswerModel({}, 0.0, {}, {}, threshold=0.5, metrics={"sentence_limit": 2})
    assert quoted_count([0.9, 0.8, 0.7], fitted) == 2  # all three are near ties; the fit was for two sentences
    assert quoted_count([0.9, 0.3], fitted) == 1
    older = AnswerModel({}, 0.0, {}, {}, threshold=0.0)  # saved before sentence_limit: the default length
    assert quoted_count([0.9, 0.8, 0.7, 0.6], older) == 3


def test_the_near_tie_ratio_is_the_largest_that_keeps_the_answers_found():
    """The second sentence answers when it comes close to the best (0.8 of it), never when it is far behind: the
    fitted ratio admits the close seconds and stops there, so confident answers stay one sentence."""
    close = [([1.0, 0.8, 0.1], [False, True, False])] * 10
    sure = [([1.0, 0.3, 0.1], [True, False, False])] * 10
    ratio, metrics = fit_near_tie_ratio(close + sure, limit=3)
    assert ratio == 0.8
    assert metrics["answer_holds_label"] == 1.0 and metrics["best_alone_holds_label"] == 0.5
    assert metrics["mean_sentences"] == 1.5
    assert fit_near_tie_ratio(sure, limit=3)[0] == 1.0  # the best alone always answers: no second sentence
    assert fit_near_tie_ratio([], limit=3)[0] == 1.0


def test_fit_separates_answering_sentences_and_saves_a_versioned_file(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        answerable = i % 4 != 0
        feats, labels = [], []
        for j in range(6):
            good = answerable and j == 0
            f = {name: float(rng.normal()) for name in FEATURES}
            f["cosine"] = 0.7 + 0.1 * rng.normal() if good else 0.3 + 0.1 * rng.normal()
            feats.append(f)
            labels.append(good)
        rows.append((feats, labels, answerable))
    model = fit(rows)
    assert model.weights["cosine"] > 0 and model.metrics["sentence_auc"] > 0.9
    assert model.metrics["top_sentence_answers"] > 0.9 and model.threshold == 1.0  # fit_both sets the near-tie ratio
    path = tmp_path / "model.json"
    AnswerModels(model, AnswerModels.unfitted().question).save(path)
    data = json.loads(path.read_text())
    assert data["version"] == FORMAT_VERSION and data["sentence"]["features"] == list(FEATURES) and "threshold" in data["sentence"]
    loaded = AnswerModels.load(path)
    assert loaded.sentence.probability(rows[1][0][0]) == pytest.approx(model.probability(rows[1][0][0]))
    assert loaded.floor.value == -1.0 and data["floor"]["metrics"] == {"fitted": False}  # unfitted: refuses nothing
    assert AnswerModels.load(tmp_path / "missing.json").sentence.metrics == {"fitted": False}
    path.write_text(json.dumps({"version": 1}))
    with pytest.raises(ValueError, match="re-fit"):
        AnswerModels.load(path)


def test_the_packaged_models_are_fitted_on_dev_only():
    models = AnswerModels.load()
    assert models.sentence.metrics.get("split") == "dev" and set(models.sentence.weights) == set(FEATURES)
    assert models.question.metrics.get("split") == "dev" and set(models.question.weights) == set(QUESTION_FEATURES)
    q = models.question.metrics
    assert q["false_abstention"] <= q["false_abstention_target"]
    s = models.sentence.metrics
    assert models.sentence.threshold == s["near_tie_ratio"] and s["answer_holds_label"] >= s["best_alone_holds_label"]


# --- question level ----------------------------------------------------------------------------------------------------


def evidence_of(question: str, *texts: str, idf: dict[str, float] | None = None, passages: list[str] | None = None,
                **kwargs) -> dict[str, float]:
    """Question features of ``texts`` as the chosen evidence, ranked in the given order."""
    candidates = [candidate(t, **kwargs) for t in texts]
    featurize(analyse(question), question, candidates, 0.7, idf or {})
    for rank, c in enumerate(candidates):
        c.probability = 0.9 - 0.2 * rank
    return question_features(analyse(question), question, candidates, passages if passages is not None else list(texts),
                             idf or {})


def test_every_question_feature_is_computed_and_none_without_evidence_claims_an_answer():
    f = evidence_of("When did New York adopt the rule?", EN_1940)
    assert set(f) == set(QUESTION_FEATURES)
    empty = question_features(analyse("When did New York adopt the rule?"), "When did New York adopt the rule?", [],
                              [], {})
    assert empty["best_probability"] == 0.0 and empty["type_present"] == 0.0 and empty["names_missing"] == 1.0


def test_best_probability_gap_and_cosine_describe_the_ranking():
    f = evidence_of("When did New York adopt the rule?", "New York adopted the rule in 1950.", EN_1940, cosine=0.6)
    assert f["best_probability"] == pytest.approx(0.9) and f["probability_gap"] == pytest.approx(0.2)
    assert f["best_cosine"] == pytest.approx(0.6) and f["top_passage_score"] == pytest.approx(0.7)
    (alone,) = [evidence_of("When?", "New York adopted the rule in 1950.")]
    assert alone["probability_gap"] == pytest.approx(0.9)  # no second candidate: the lead is the whole probability


def test_type_present_asks_whether_the_chosen_evidence_holds_the_asked_kind_of_fact():
    question = "When did New York adopt the prudent man rule?"
    assert evidence_of(question, "New York adopted the prudent man rule in 1950.")["type_present"] == 1.0
    without = evidence_of(question, "New York adopted the prudent man rule.", "The rule was a change.")
    assert without["type_asked"] == 1.0 and without["type_present"] == 0.0
    assert evidence_of("Tell me about the rule", "New York adopted the rule.")["type_asked"] == 0.0


def test_the_question_features_read_the_best_sentence_not_the_near_ties_beside_it():
    question = "When did New York adopt the prudent man rule?"
    candidates = [candidate("New York adopted the prudent man rule.", cosine=0.7),
                  candidate("The rule changed in 1950.", cosine=0.69)]
    featurize(analyse(question), question, candidates, 0.7, {})
    for c, probability in zip(candidates, (0.9, 0.89)):
        c.probability = probability
    f = question_features(analyse(question), question, candidates, [c.text for c in candidates], {})
    # the second holds a year and nearly ties, but the best sentence, the one the answer leads with, holds none
    assert f["type_present"] == 0.0
    assert question_features(analyse(question), question, candidates[::-1], [c.text for c in candidates],
                             {})["type_present"] == 1.0


def test_numbers_and_names_the_question_pins_down_are_looked_for_in_the_chosen_evidence():
    f = evidence_of("What did Vanguard do in 1978?", "Congress passed the Revenue Act in 1978.")
    assert f["numbers_missing"] == 0.0 and f["names_missing"] == 1.0
    g = evidence_of("What did Congress do in 1981?", "Congress passed the Revenue Act in 1978.")
    assert g["numbers_missing"] == 1.0 and g["names_missing"] == 0.0


def test_keyword_coverage_and_the_rarest_missing_word():
    idf = {"secretary": 5.0, "labor": 2.0, "signed": 1.0}
    question = "Who was secretary of labor when it was signed?"
    f = evidence_of(question, "The order was signed by the President.", idf=idf,
                    passages=["The Department of Labor issued guidance.", "The order was signed."])
    assert f["keyword_coverage"] == pytest.approx(1.0 / 8.0)
    assert f["passage_keyword_coverage"] == pytest.approx(3.0 / 8.0)
    assert f["max_missing_idf"] == pytest.approx(5.0)
    covered = evidence_of(question, "The secretary of labor signed it.", idf=idf)
    assert covered["max_missing_idf"] == 0.0 and covered["keyword_coverage"] == pytest.approx(1.0)
    unknown = evidence_of("Who was the zyzzyva?", "Nothing here.", idf={"nothing": 2.0})
    assert unknown["max_missing_idf"] == pytest.approx(2.0)  # an unknown word counts as the rarest known


def test_the_rarest_question_word_the_best_sentence_lacks():
    idf = {"fee": 6.0, "managers": 3.0, "cap": 4.0, "order": 0.5}
    question = "What fee does the order cap for managers?"
    off = evidence_of(question, "The order says fiduciaries must vet managers.", "Fees have a cap under the order.",
                      idf=idf)
    assert off["best_missing_idf"] == pytest.approx(6.0)  # "fee" is in the second sentence, not the best
    assert off["max_missing_idf"] == 0.0  # and so in a retrieved passage
    on = evidence_of(question, "The order caps the fee that managers charge.", idf=idf)
    assert on["best_missing_idf"] == 0.0
    # in the other language: 收费 ("to charge a fee") holds "fee"
    zh = evidence_of(question, "行政令为基金经理的收费设定了上限。", idf=idf, language="zh")
    assert zh["best_missing_idf"] < 6.0


def test_passage_score_drop_says_whether_one_retrieved_passage_stands_out():
    question = "When did New York adopt the rule?"
    candidates = [candidate(text, passage_rank=rank) for rank, text in enumerate(
        ["New York adopted the rule in 1950.", EN_1940, "Other states followed.", "A later sentence of passage 1."])]
    for c, score in zip(candidates, (0.8, 0.5, 0.45, 0.8)):
        c.passage_score = score
    candidates[3].passage_rank = 0  # a second sentence of the best passage
    featurize(analyse(question), question, candidates, 0.8, {})
    f = question_features(analyse(question), question, candidates, [c.text for c in candidates], {})
    assert f["passage_score_drop"] == pytest.approx(0.8 - 0.45)  # best passage minus the last retrieved one
    alone = evidence_of(question, "New York adopted the rule in 1950.")
    assert alone["passage_score_drop"] == 0.0  # one passage: nothing to stand out from
    from_index = evidence_of(question, EN_1940, passage_rank=None)
    assert from_index["passage_score_drop"] == 0.0  # sentences found only in the sentence index carry no passage score


def test_a_question_asking_for_a_name_needs_a_personal_name_in_the_evidence():
    roles = evidence_of("What is the name of the Secretary of Labor?", "The Secretary of Labor shall reexamine the guidance.")
    assert roles["name_absent"] == 1.0  # a title is not a name
    named = evidence_of("Which president signed the order?", "Today, President Donald J. Trump signed an Executive Order.")
    assert named["name_absent"] == 0.0
    assert evidence_of("Who chairs the working group?", "It is chaired by the Special Advisor.")["name_absent"] == 0.0
    # a Chinese person name counts; jieba tags the common word 养老金 as a name too, which CC-CEDICT knows as "pension"
    author = evidence_of("那篇文章的作者叫什么名字?", "撰文:陈默 cmDeFi", language="zh")
    assert author["name_absent"] == 0.0
    common = evidence_of("那位州长叫什么名字?", "养老金投资高达 35% 的权益资产。", language="zh")
    assert common["name_absent"] == 1.0


def test_the_focus_the_best_sentence_lacks():
    company = evidence_of("Which company offered the first 401(k) plan?",
                          "The 401(k) plan was first introduced in 1978 under the Revenue Act.")
    assert company["focus_missing"] == 1.0  # on the topic, but no company in it
    fee = evidence_of("What fee cap does the order put on funds?", "The order caps the fee that managers charge.",
                      "Funds have a cap.")
    assert fee["focus_missing"] == 0.0  # "fee" and "cap" in any number
    governor = evidence_of("纽约州 1950 年采纳谨慎人规则时,州长是谁?", ZH_1950, language="zh")
    assert governor["focus_missing"] == 1.0
    translated = evidence_of("Which company first offered it?", "这家公司在 1978 年首次推出了该计划。", language="zh")
    assert translated["focus_missing"] == 0.0  # 公司 is "company"
    assert evidence_of("When did New York adopt the rule?", EN_1940)["focus_missing"] == 0.0  # no focus: nothing missing


def test_language_flags():
    f = evidence_of("When did New York adopt the rule?", ZH_1950, language="zh")
    assert f["cross_language"] == 1.0 and f["chinese_question"] == 0.0
    g = evidence_of("纽约州何时采纳谨慎人规则?", ZH_1950, language="zh")
    assert g["cross_language"] == 0.0 and g["chinese_question"] == 1.0


def test_fit_both_learns_to_abstain_when_the_evidence_lacks_what_the_question_pins_down():
    """Synthetic dev set: unanswerable questions name a year their best sentence does not hold; the question model
    learns that from ``numbers_missing`` although their sentences look as good as the answerable ones'."""
    rng = np.random.default_rng(1)
    records = []
    for i in range(80):
        answerable = i % 3 != 0
        year = 1900 + i
        question = f"When was the act of {year} changed?"
        texts = [f"The act of {year if answerable else year + 1} was changed in {1950 + i}.",
                 f"Another sentence number {i}.", "A third sentence about acts."]
        candidates = [candidate(t, cosine=float(0.6 + 0.05 * rng.normal()) if j == 0 else 0.3)
                      for j, t in enumerate(texts)]
        featurize(analyse(question), question, candidates, 0.7, {})
        labels = [answerable and j == 0 for j in range(3)]
        records.append(QuestionRecord(question, candidates, labels, answerable, texts, {}))
    models = fit_both(records, folds=4)
    q = models.question
    assert set(q.weights) == set(QUESTION_FEATURES) and q.weights["numbers_missing"] < 0
    assert q.metrics["false_abstention"] <= 0.03 and q.metrics["correct_abstention"] > 0.8
    assert q.metrics["split"] == "dev" and 0.0 < q.threshold < 1.0
    # its regularisation is the grid's strength with the lowest out-of-fold Brier score, unless one is given
    by_c = q.metrics["out_of_fold_brier_by_C"]
    assert set(by_c) == {str(value) for value in QUESTION_C_GRID} and by_c[str(q.metrics["C"])] == min(by_c.values())
    given = fit_both(records, folds=4, question_c=0.5).question.metrics
    assert given["C"] == 0.5 and list(given["out_of_fold_brier_by_C"]) == ["0.5"]


class _Settings:
    max_answer_sentences = 2
    extra_sentence_ratio = None  # the fitted near-tie ratio applies
    answer_threshold = None


def _choosing_answerer() -> ExtractiveAnswerer:
    """An answerer whose ``choose`` is under test: no index, a near-tie ratio of 0.4."""
    answerer = ExtractiveAnswerer.__new__(ExtractiveAnswerer)
    answerer.settings = _Settings()
    answerer.model = AnswerModel(weights={}, bias=0.0, mean={}, scale={}, threshold=0.4)  # near-tie ratio
    answerer.question_model = AnswerModels.unfitted().question
    return answerer


def test_a_compound_question_gets_evidence_for_each_part():
    """"When ... and how much?": the best sentence gives the year; a sentence holding the share is added for the
    second part even though the model rates a third sentence (no amount) higher."""
    answerer = _choosing_answerer()
    year = candidate("New York let pension funds buy stocks in 1950.", types={"date"}, probability=0.9)
    other = candidate("The rule replaced the legal list.", types=set(), probability=0.8)
    share = candidate("Funds could hold up to 35% in stocks.", types={"percent"}, probability=0.4)
    request = AnswerRequest(question="When did New York first let pension funds buy stocks, and how much?",
                            query="", hits=[])
    chosen = answerer.choose(request, [year, other, share])
    assert chosen == [year, share]
    # a simple question takes the next best sentences instead
    simple = AnswerRequest(question="When did New York first let pension funds buy stocks?", query="", hits=[])
    assert answerer.choose(simple, [year, other, share]) == [year, other]


def test_a_sentence_repeated_with_other_punctuation_is_quoted_once():
    """An article's summary repeating its body (other quote marks), or a sentence cut at a passage end, takes no
    second place in the answer: the next sentence does."""
    answerer = _choosing_answerer()
    body = candidate("养老金买入加密资产相当于“囤币”,等于另外一个“加密资产战略储备”。", probability=0.9)
    summary = candidate("养老金买入加密资产相当于「囤币」,等于另外一个「加密资产战略储备」。", probability=0.85)
    reason = candidate("加密资产一旦买入就会被长期锁定。", probability=0.8)
    request = AnswerRequest(question="作者为什么说养老金买加密资产就等于囤币?", query="", hits=[])
    assert answerer.choose(request, [body, summary, reason]) == [body, reason]
    part, whole = "Prior to 2017, this group also included", ("Prior to 2017, this group also included multiple-"
                                                              "employer collectively bargained plans.")
    assert repeats(part, whole) and not repeats(whole, part)
    head = candidate("Presidential Documents", probability=0.9)
    full = candidate("38921 Federal Register / Vol. 90, No. 153 / Tuesday, August 12, 2025 / Presidential Documents",
                     probability=0.7)
    assert answerer.choose(request, [head, full, reason]) == [full, reason]  # the fuller one takes the part's place
    assert not repeats("New York allowed 35% in stocks in 1950.", "North Carolina allowed 10% in stocks in 1961.")


def test_a_table_row_is_quoted_beside_a_prose_answer_only_for_a_year_the_question_names():
    """A row of plan contributions ties with the sentence on New York's stock limit for "how much could they put
    in?": a question that names no year asks for no row; one that names the row's year does, and beside a row that
    answers no named year its neighbouring rows stay."""
    answerer = _choosing_answerer()
    prose = candidate("1950 年,纽约州允许养老金投资高达 35% 的权益资产(如股票)。", probability=0.9)
    row = candidate("1984 17,303 7,526 $91,754 $16,291 $10,617", probability=0.8)
    later = candidate("1998 300,575 37,114 $1,540,975 $140,000 $130,000", probability=0.8)

    def chosen(question: str, candidates: list) -> list:
        return answerer.choose(AnswerRequest(question=question, query="", hits=[]), candidates)

    assert chosen("how much could New York pensions put in?", [prose, row]) == [prose]
    assert chosen("how much did plans contribute in 1984, and what did New York allow?", [prose, row]) == [prose, row]
    assert chosen("how many plans had over $1.5 trillion in assets?", [later, row]) == [later, row]


def test_the_on_topic_floor_sits_mid_way_between_off_topic_and_answerable_questions():
    floor = fit_floor([0.08, 0.12, 0.19], [0.33, 0.4, 0.7])
    assert floor.value == pytest.approx(0.26)
    assert floor.metrics["off_topic_refused"] == 1.0 and floor.metrics["answerable_refused"] == 0.0
    assert floor.metrics["highest_off_topic"] == 0.19 and floor.metrics["lowest_answerable"] == 0.33


def test_an_overlapping_floor_puts_the_fewest_questions_on_the_wrong_side():
    # one off-topic question scores like an answerable one: the cut keeps the other five right, in the widest gap
    floor = fit_floor([0.1, 0.15, 0.5], [0.3, 0.45, 0.6])
    assert 0.15 < floor.value < 0.3 and floor.metrics["off_topic_refused"] == pytest.approx(2 / 3, abs=1e-4)
    assert floor.metrics["answerable_refused"] == 0.0


def test_without_off_topic_dev_questions_there_is_no_floor():
    assert fit_floor([], [0.4, 0.5]).value == -1.0
