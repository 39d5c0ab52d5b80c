"""fieldnotes.timings: run times recorded by the runs, rendered into the intro and the README."""

import re

import pytest
from conftest import ROOT

from fieldnotes import runner, timings
from fieldnotes.generated import without_generated
from fieldnotes.vlm import report as vlm_report

#: A duration typed into the README outside its generated table: a number and a time unit,
#: unless it states a budget ("≤ 3 minutes", "under 45 minutes", "at most 10 min").
TYPED_DURATION = re.compile(
    r"(?<!≤ )(?<!< )(?<!under )(?<!at most )(?<!within )(?<![\w.])\d+(?:[.,–-]\d+)*\s?"
    r"(?:s|ms|sec|seconds?|min|minutes?|h|hours?)\b"
)


def unquoted(text: str) -> str:
    """Text without code spans, code blocks and quotations (a post's own words are not ours)."""
    return re.sub(r"```.*?```|`[^`]*`|\"[^\"\n]*\"|“[^”]*”", " ", text, flags=re.S)


def record(size="book", **seconds):
    return timings.TimingRecord(
        size, "2026-12-01 10:00 UTC", "2 cores (x), 24 GiB, no GPU", (0.5, 1.5), seconds
    )


@pytest.mark.parametrize(
    ("s", "text"), [(0.4, "0 s"), (42.4, "42 s"), (59.6, "1 min 00 s"), (415, "6 min 55 s")]
)
def test_duration_reads_like_a_person_says_it(s, text):
    assert timings.duration(s) == text


def test_records_round_trip_and_bad_files_are_named(tmp_path):
    path = timings.write_record(record(a=1.0), tmp_path / "t.json")
    assert timings.read_record(path) == record(a=1.0)
    (tmp_path / "bad.json").write_text('{"a": 1.0}')
    with pytest.raises(ValueError, match="bad.json is not a timing record"):
        timings.read_record(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="size"):
        record(size="huge")


def test_newest_record_wins(tmp_path):
    old = timings.write_record(record(a=1.0), tmp_path / "old.json")
    new = timings.TimingRecord("book", "2026-12-02 09:00 UTC", "m", (0.0, 0.0), {"a": 2.0})
    timings.write_record(new, tmp_path / "new.json")
    assert timings.newest([old, tmp_path / "new.json"]).seconds == {"a": 2.0}
    assert timings.newest([]) is None


def test_the_table_says_which_run_each_figure_comes_from():
    table = timings.chapter_times(
        {"01-a": "1 · A", "02-b": "2 · B"}, {"01-a": record(**{"01-a": 75.0})}, {}
    )
    assert "| 1 · A | 1 min 15 s | not recorded |" in table
    assert "| 2 · B | not recorded | not recorded |" in table
    assert "2026-12-01 10:00 UTC" in table and "load average 0.5 at the start and 1.5" in table


def test_a_partial_run_does_not_hide_the_other_chapters_times():
    full = record(**{"01-a": 75.0, "02-b": 30.0})
    later = timings.TimingRecord("book", "2026-12-02 09:00 UTC", "m", (2.0, 2.0), {"02-b": 40.0})
    by_chapter = timings.newest_by_chapter([later, full])
    assert by_chapter == {"01-a": full, "02-b": later}
    table = timings.chapter_times({"01-a": "1 · A", "02-b": "2 · B"}, by_chapter, {})
    assert "| 1 · A | 1 min 15 s |" in table and "| 2 · B | 40 s |" in table
    assert "book size (1 · A): one execution per notebook on 2026-12-01 10:00 UTC" in table
    assert "book size (2 · B): one execution per notebook on 2026-12-02 09:00 UTC" in table


def test_record_names_sort_by_time():
    early, late = record(a=1.0), timings.TimingRecord("ci", "2026-12-02 09:05 UTC", "m", (0, 0))
    assert timings.record_name(early) == "book-2026-12-01T1000.json"
    assert timings.record_name(late) == "ci-2026-12-02T0905.json"


def test_a_missing_marker_is_a_clear_error(tmp_path):
    (tmp_path / "intro.md").write_text("# Intro\n")
    with pytest.raises(ValueError, match="chapter-times"):
        timings.render_page(tmp_path / "intro.md", "| t |")
    with pytest.raises(ValueError, match="README.md has no generated"):
        timings.replace_readme_block("# README\n", "| t |")


def test_the_readme_table_is_the_committed_records_rendered():
    readme = (ROOT / "README.md").read_text()
    assert timings.readme_block(runner.times_table(ROOT, include_local=False)) in readme, (
        "README.md's chapter-times table is not the committed records rendered (a chapter was "
        "added or a record changed): run `python -m fieldnotes.runner timings --save`"
    )


def test_the_readme_types_no_duration_outside_its_generated_sections():
    readme = (ROOT / "README.md").read_text()
    assert timings.README_BEGIN in readme and timings.README_END in readme
    rest = without_generated(readme)
    assert timings.README_BEGIN not in rest and vlm_report.README_BEGIN not in rest
    typed = [m.group(0) for m in TYPED_DURATION.finditer(unquoted(rest))]
    assert not typed, f"durations typed into README.md (record them instead): {typed}"


@pytest.mark.parametrize("page", runner.TIMED_PAGES)
def test_the_timed_pages_carry_the_marker_and_no_typed_times(page):
    text = (ROOT / "book" / page).read_text()
    assert timings.INTRO_MARKER in text
    assert not TYPED_DURATION.findall(unquoted(text))


def test_only_sections_a_command_generates_are_cut_before_the_typed_duration_check():
    text = ("a\n<!-- BEGIN x (generated by `make x`) -->\n12 s\n<!-- END x -->\n"
            "<!-- BEGIN 01-memory -->\n34 s\n<!-- END 01-memory -->\n")
    assert without_generated(text) == "a\n\n<!-- BEGIN 01-memory -->\n34 s\n<!-- END 01-memory -->\n"
