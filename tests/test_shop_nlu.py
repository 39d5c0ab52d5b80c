"""fieldnotes.shop.utterances and .nlu: held-out messages are understood; the baseline is weaker."""

import numpy as np
import pytest
from seqeval.metrics import f1_score

from fieldnotes.shop.catalog import PRODUCT_TYPES
from fieldnotes.shop.nlu import phone_number, rule_parse, slots_from_tags, trained_nlu
from fieldnotes.shop.text import PriceRange, fold
from fieldnotes.shop.utterances import (
    CHANNELS,
    INTENTS,
    TEMPLATES,
    held_out_synonym,
    make_utterances,
    realise,
    say,
)


@pytest.fixture(scope="module")
def data():
    train = make_utterances(1500, seed=1, split="train")
    test = make_utterances(480, seed=2, split="test")
    return train, test, trained_nlu(1500, 1)  # the same messages, trained once per test process


def scores(parse, utterances, channel=None):
    us = [u for u in utterances if channel in (None, u.channel)]
    parses = [parse(u.text) for u in us]
    acc = np.mean([p.intent == u.intent for p, u in zip(parses, us, strict=True)])
    return acc, f1_score([list(u.tags) for u in us], [list(p.tags) for p in parses])


def test_test_templates_are_unseen_in_training():
    for intent in INTENTS:
        for lang in ("vi", "en"):
            assert not set(TEMPLATES[intent]["train"][lang]) & set(TEMPLATES[intent]["test"][lang])


def test_held_out_synonyms_never_reach_training(data):
    train, test, _ = data
    train_text = " ".join(" ".join(u.tokens) for u in train)
    held = [held_out_synonym((t.name_vi, *t.synonyms), t.name_en) for t in PRODUCT_TYPES.values()]
    for name in filter(None, held):
        assert f" {name} " not in f" {train_text} ", name
    assert any(name in " ".join(" ".join(u.tokens) for u in test) for name in filter(None, held))


def test_tags_line_up_with_what_the_parser_reads(data):
    for u in data[0][:300] + data[1]:
        assert len(u.tokens) == len(u.tags)
        assert rule_parse(u.text).tokens == u.tokens


def test_every_channel_and_intent_is_generated(data):
    _, test, _ = data
    assert {u.channel for u in test} == set(CHANNELS) and {u.intent for u in test} == set(INTENTS)
    assert all(u.text == fold(u.text) for u in test if u.channel == "no_diacritics")


def test_learned_model_understands_held_out_messages(data):
    _, test, model = data
    acc, f1 = scores(model.parse, test)
    assert acc >= 0.9 and f1 >= 0.85, (acc, f1)
    acc_nd, f1_nd = scores(model.parse, test, "no_diacritics")
    assert acc_nd >= 0.85 and f1_nd >= 0.8, (acc_nd, f1_nd)


def test_rule_baseline_is_beaten_on_typos(data):
    _, test, model = data
    assert scores(model.parse, test, "typos")[0] > scores(rule_parse, test, "typos")[0] + 0.1


def test_slots_resolve_to_shop_values(data):
    model = data[2]
    p = model.parse("shop ơi có áo phông nam màu đen dưới 300k không")
    assert p.intent == "search"
    assert p.slots["ptype"] == "ao_thun" and p.slots["colour"] == "den" and p.slots["gender"] == "nam"
    assert p.slots["price"] == PriceRange(0, 300_000)
    p = model.parse("ten minh la tran thi lan sdt 0912345678")
    assert p.intent == "give_details" and p.slots["phone"] == "0912345678"
    assert p.slots["name"] == "Tran Thi Lan"
    assert rule_parse("lấy size XL nhé").slots["size"] == "XL"


def test_slots_from_tags_and_phone_validation():
    tokens = ("thêm", "hai", "cái", "size", "m")
    tags = ("O", "B-quantity", "O", "O", "B-size")
    assert slots_from_tags(tokens, tags) == {"quantity": 2, "size": "M"}
    assert phone_number("+84 912 345 678") == "0912345678"
    assert phone_number("12345") is None and phone_number("0112345678") is None


def test_say_fills_the_goal_and_refuses_unknown_channels():
    rng = np.random.default_rng(0)
    text = say("search", rng, channel="accented", goal={"ptype": "ao_thun", "colour": "den", "price": "dưới 300k"})
    assert "dưới 300k" in text
    with pytest.raises(ValueError, match="channel"):
        realise("{ptype}", "search", "klingon", rng, split="test")
    with pytest.raises(ValueError, match="split"):
        make_utterances(10, seed=0, split="dev")


def test_empty_message_parses_to_other():
    assert rule_parse("").intent == "other"


def test_held_out_names_addresses_and_price_forms_never_reach_training():
    import numpy as np

    from fieldnotes.shop.utterances import (
        ADDRESS_PARTS,
        NAME_PARTS,
        PRICE_FORMS,
        make_address,
        make_name,
    )

    for parts in (NAME_PARTS, ADDRESS_PARTS):
        for train, test in zip(parts["train"], parts["test"], strict=True):
            assert not set(train) & set(test)
    assert not set(PRICE_FORMS["train"]) & set(PRICE_FORMS["test"])
    rng = np.random.default_rng(0)
    train_words = {w for part in NAME_PARTS["train"] + ADDRESS_PARTS["train"] for p in part for w in p.split()}
    names = [make_name(rng, "test") for _ in range(200)]
    assert {len(n.split()) for n in names} == {1, 2, 3}
    streets = {make_address(rng, "test").split(" ", 1)[1] for _ in range(50)}
    assert all(not any(s.startswith(t) for t in ADDRESS_PARTS["train"][0]) for s in streets)
    assert not {w for n in names for w in n.split()} & train_words


def test_a_saved_parser_leaves_no_temporary_model_files(tmp_path, monkeypatch):
    import tempfile

    from fieldnotes.shop.nlu import SlotTagger, load_nlu, save_nlu, train_nlu

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where crfsuite's files would go
    model = train_nlu(make_utterances(300, seed=3, split="train"), seed=3)
    loaded = load_nlu(save_nlu(model, tmp_path / "nlu.pkl"))
    texts = ["tìm balo dưới 500k", "thêm 2 cái", "tên mình là An sđt 0912345678"]
    assert [loaded.parse(t) for t in texts] == [model.parse(t) for t in texts]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nlu.pkl"]
    with pytest.raises(ValueError, match="model_bytes"):
        SlotTagger(b"")
