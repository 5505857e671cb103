"""Pure, in-process reward rules: answer extraction, format, format_soft, language, registry."""

import pytest

from r1.rewards import REWARDS, extract_answer, register, score_completions
from r1.rewards.language import words_by_script
from r1.rewards.normalize import hedge, normalize

T = "<think>reasoning</think>"


@pytest.mark.parametrize(
    "completion, expected",
    [
        (f"{T}<answer>42</answer>", "42"),
        (f"{T}\n\n<answer> 42 </answer>\n", "42"),
        (f"{T}<answer>\\boxed{{5}}</answer>", "5"),  # box inside the answer block: its content
        (f"{T}<answer>x = \\boxed{{\\frac{{1}}{{2}}}}.</answer>", "\\frac{1}{2}"),
        (f"{T}<answer>\\boxed{{5}} and \\boxed{{ 5 }}</answer>", "5"),  # same value twice is one answer
        (f"{T}<answer>\\boxed{{5}} and \\boxed{{6}}</answer>", None),  # two different values
        (f"{T}<answer>\\boxed{{5}} or 6</answer>", None),  # a number outside the box
        (f"{T}<answer>\\boxed{{5}} or 15</answer>", None),  # after the box, even where the box's text reappears
        (f"{T}<answer>x_1 = \\boxed{{5}}</answer>", "5"),  # working before the box is not a second value
        (f"{T}<answer>2 + 3 = \\boxed{{5}}.</answer>", "5"),
        (f"{T}<answer>She makes $18 every day.</answer>", "18"),  # a sentence naming one value
        (f"{T}<answer>Therefore $x \\geq 5$ is the solution.</answer>", "x \\geq 5"),
        (f"{T}<answer>It is not 5.</answer>", None),  # a negation, a hedge, two values: no answer
        (f"{T}<answer>It is at least 5 apples.</answer>", None),
        (f"{T}<answer>The answer is 5 or 6.</answer>", None),
        (f"{T}<answer>Not 10, it is 1,000.99 euros.</answer>", "1000.99"),  # the negated 10 is not named
        (f"{T}<answer>Not 10, maybe 12.</answer>", None),
        (f"{T}<answer>She has 3 apples and 4 pears.</answer>", None),
        ("The sum is \\boxed{12}.", "12"),  # no tags at all: the box
        ("first \\boxed{3}, finally \\fbox{4}", None),  # two different boxes → no single answer
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),  # escaped braces inside a box
        ("\\boxed{12", None),  # truncated box
        (f"{T} So \\boxed{{7}}", "7"),  # R1-distill style: box after the think block
        ("<think>the answer is <answer>5</answer></think>", None),  # only inside think
        ("<think>the answer is \\boxed{5}</think>", None),
        ("<think>never closed <answer>5</answer>", None),
        (f"{T}<answer>5</answer><answer>6</answer>", None),  # two answer blocks
        (f"{T}<answer>5</answer><answer>5</answer>", None),
        (f"{T}<answer>5", None),  # unclosed answer
        (f"{T}</answer>5<answer>", None),  # reversed tags
        (f"{T}<answer>   </answer>", None),
        (f"{T}{'<answer>' * 20000}5</answer>", None),  # 20,000 repeated tags
        (f"{T}<think>again</think><answer>5</answer>", "5"),  # the text after the last </think>
        ("no answer here 42", None),
        ("", None),
    ],
)
def test_extract_answer(completion, expected):
    assert extract_answer(completion) == expected


def test_extract_answer_think_prefilled():
    completion = "reasoning here</think><answer>9</answer>"
    assert extract_answer(completion, {"think_prefilled": True}) == "9"
    assert extract_answer("<think>r</think><answer>9</answer>", {"think_prefilled": True}) == "9"
    # prefilled but the model never closes its thinking: the answer is inside the think block
    assert extract_answer("I think <answer>9</answer>", {"think_prefilled": True}) is None
    assert extract_answer("I think <answer>9</answer>", {"think_prefilled": False}) == "9"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("$18.00", "18.00"),
        ("\\$1,000.50 dollars", "1000.50"),
        ("58,500", "58500"),
        ("10,\\!080", "10080"),
        ("11,\\! 111,\\! 111,\\! 100", "11111111100"),
        ("5\\text{ cm}", "5"),
        ("864 \\mbox{ inches}^2", "864"),
        ("18 eggs", "18"),
        ("\\text{Evelyn}", "\\text{Evelyn}"),  # a whole-answer text is not a unit
        ("(100,200)", "(100,200)"),  # a tuple is not a thousands-separated number
        ("3, 5, 7", "3, 5, 7"),
        ("5x", "5x"),  # a variable is not a unit
        ("\\( \\frac{1}{2} \\)", "\\frac{1}{2}"),
        ("90°", "90^\\circ"),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "prediction, reference, expected",
    [
        ("2 or 3", "3", True),
        ("either 4 or 5", "5", True),
        ("any number from 0 to 100", "100", True),
        ("between 3 and 7", "5", True),
        ("x \\geq 4", "4", True),
        ("1 \\pm \\sqrt{19}", "1 \\pm \\sqrt{19}", False),  # the reference uses ± itself
        ("(0,9) \\cup (9,36)", "(0,9) \\cup (9,36)", False),
        ("\\frac{14}{3}", "\\frac{14}{3}", False),
        ("\\text{east}", "\\text{east}", False),
    ],
)
def test_hedge(prediction, reference, expected):
    assert hedge(prediction, reference) is expected


GOOD = "<think>Add 2 and 3.</think><answer>5</answer>"


@pytest.mark.parametrize(
    "completion, strict, soft",
    [
        (GOOD, 1.0, 1.0),
        (f"  \n{GOOD}\n\n", 1.0, 1.0),  # surrounding whitespace is allowed
        ("<think>a</think>\n \n<answer>5</answer>", 1.0, 1.0),  # whitespace between blocks
        (f"{GOOD}<|im_end|>", 1.0, 1.0),  # EOS token text at the end
        (f"{GOOD}<|endoftext|></s>", 1.0, 1.0),
        ("<think>a</think>text<answer>5</answer>", 0.0, 0.75),  # text between blocks
        (f"Sure! {GOOD}", 0.0, 0.75),  # text before
        (f"{GOOD} Hope this helps.", 0.0, 0.75),  # text after
        ("<answer>5</answer><think>a</think>", 0.0, 0.5),  # wrong order
        ("<think> </think><answer>5</answer>", 0.0, 0.25),  # empty think
        ("<think>a</think><answer></answer>", 0.0, 0.25),  # empty answer
        ("<think>a <answer>4</answer> b</think><answer>5</answer>", 0.0, 0.0),  # tag inside think
        ("<think>a <think>b</think> c</think><answer>5</answer>", 0.0, 0.25),  # nested think
        ("<think>a</think><think>b</think><answer>5</answer>", 0.0, 0.25),  # repeated think
        ("<think>a</think><answer>5</answer><answer>5</answer>", 0.0, 0.25),  # repeated answer
        ("<think>a</think>", 0.0, 0.25),
        ("The answer is 5.", 0.0, 0.0),
        ("<think>never closed <answer>5</answer>", 0.0, 0.25),
        ("<think>a</think><answer>5" + " " * 100_000, 0.0, 0.25),  # long whitespace: linear
    ],
)
def test_format(completion, strict, soft):
    assert REWARDS["format"](completion, {}) == strict
    assert REWARDS["format_soft"](completion, {}) == soft


def test_format_think_prefilled():
    completion = "Add 2 and 3.</think><answer>5</answer>"
    assert REWARDS["format"](completion, {"think_prefilled": False}) == 0.0
    assert REWARDS["format"](completion, {"think_prefilled": True}) == 1.0
    assert REWARDS["format"](GOOD, {"think_prefilled": True}) == 1.0  # not prepended twice


@pytest.mark.parametrize(
    "text, expected",
    [
        ("We compute the sum", {"LATIN": 4}),
        ("我们计算", {"CJK": 4}),  # each ideograph is a word
        ("먼저 합을 계산합니다", {"HANGUL": 3}),  # Hangul runs are words
        ("ひらがなとカタカナ", {"HIRAGANA": 5, "KATAKANA": 4}),
        ("Let x = 5, so $x^2 + \\frac{1}{2}$ and f(x) = 3", {"LATIN": 3}),  # math/variables skipped
        ("Сначала считаем", {"CYRILLIC": 2}),
        ("123 + 456 = 579", {}),
        ("(hello), world.", {"LATIN": 2}),
    ],
)
def test_words_by_script(text, expected):
    assert dict(words_by_script(text)) == expected


@pytest.mark.parametrize(
    "completion, example, expected",
    [
        ("<think>먼저 합을 계산합니다</think><answer>5</answer>", {"language": "ko"}, 1.0),
        ("<think>먼저 sum 을 compute 합니다</think><answer>5</answer>", {"language": "ko"}, 0.6),  # 3 of 5
        ("<think>We compute 먼저</think><answer>5</answer>", {"language": "en"}, 2 / 3),
        ("<think>我们先 compute the sum</think><answer>5</answer>", {"language": "zh"}, 0.5),
        ("<think>我们先计算</think><answer>5</answer>", {"prompt": "计算一加一"}, 1.0),
        ("<think>we add them</think>", {"prompt": "计算一加一"}, 0.0),
        ("<think>まず計算します</think>", {"language": "ja"}, 1.0),  # kana + kanji
        ("<think>x = 1 + 2</think><answer>3</answer>", {"language": "zh"}, 1.0),  # no words
        ("no think block, all English", {"language": "en"}, 1.0),
        ("no think block, all English", {"language": "ru"}, 0.0),
        ("prefilled 합니다</think><answer>5</answer>", {"language": "ko", "think_prefilled": True}, 0.5),
        ("anything", {"prompt": "1 + 1 = ?"}, 1.0),  # no detectable prompt language
    ],
)
def test_language(completion, example, expected):
    assert REWARDS["language"](completion, example) == pytest.approx(expected)


def test_language_unknown_code_is_an_error_not_a_score():
    scores = score_completions(["<think>hi there</think>"], [{"language": "xx"}], ["language"])
    assert scores.values["language"] == [None]
    assert scores.counts["rewards/language_errors"] == 1


def test_register_and_errors_are_contained():
    @register("test_flaky", replace=True)
    def flaky(completion, example):
        if "boom" in completion:
            raise RuntimeError("bad sample")
        return None if "none" in completion else 0.5

    with pytest.raises(ValueError, match="already registered"):
        register("test_flaky")(flaky)
    long_bad = "boom" + "x" * 10_000
    scores = score_completions(["ok", long_bad, "none"], [{}, {}, {}], ["test_flaky", "format"])
    assert scores.values["test_flaky"] == [0.5, None, None]
    assert scores.counts == {"rewards/test_flaky_errors": 2}
    message = scores.first_error["test_flaky"]
    assert "bad sample" in message and "boom" in message and len(message) < 400
    assert "x" * 201 not in message  # never more than 200 characters of a completion
    REWARDS.pop("test_flaky")
