"""Fixed-width tables of text files: column headings read from the raw layout, quoted rows read cell by cell."""

from __future__ import annotations

from assistant.clean import clean
from assistant.load import load_file
from assistant.tables import dump_layouts, in_order, labelled_rows, table_layouts
from tests.conftest import DOL_TABLES


def _line(*cells: tuple[int, str]) -> str:
    """A fixed-width line: each text placed at its column."""
    line = ""
    for column, text in cells:
        line = line.ljust(column) + text
    return line


# numbers centred at columns 14, 28, 43, 57; group headings centred over each pair, sub-headings set narrower
GROUPED = "\n".join([
    _line((17, "Table B2. Plans by sponsor")),
    _line((23, "1990-1992")),
    _line((14, "1")),
    _line((17, "All Plans"), (44, "Small Plans")),
    _line((1, "Year"), (12, "Defined"), (25, "Defined"), (40, "Defined"), (53, "Defined")),
    _line((12, "Benefit"), (23, "Contribution"), (40, "Benefit"), (51, "Contribution")),
    "",
    _line((1, "1990"), (12, "1,000"), (26, "2,000"), (42, "300"), (56, "400")),
    _line((1, "1991"), (12, "1,100"), (26, "2,100"), (42, "310"), (56, "410")),
    _line((1, "1992"), (12, "1,200"), (26, "2,200")),
]) + "\n"


def test_headings_set_narrower_than_their_numbers_keep_their_order():
    # two phrases nearest to the same column still stand over two columns, left to right
    assert in_order([10.0, 14.0], [9.0, 20.0, 40.0]) == [0, 1]
    assert in_order([1.0, 2.0, 3.0], [1.0, 2.0]) is None


def test_group_headings_span_their_columns_and_sub_headings_stack():
    layout = table_layouts(GROUPED)["Table B2"]
    assert layout.columns == ("Year", "All Plans Defined Benefit", "All Plans Defined Contribution",
                              "Small Plans Defined Benefit", "Small Plans Defined Contribution")
    assert layout.value_counts == {4, 2}  # a row of two values fills the leading columns


def test_a_table_whose_headings_cannot_all_be_placed_is_not_labelled():
    unplaced = "Table C1. Two numbers\n\n Year        Count\n\n 1990    10        20\n 1991    11        21\n"
    assert table_layouts(unplaced) == {}


def test_the_dol_tables_read_their_columns(corpus_mirror):
    layouts = table_layouts((corpus_mirror / DOL_TABLES).read_text(encoding="utf-8"))
    assert layouts["Table E19"].columns == ("Year", "Number of Plans", "Active Participants (thousands)",
                                            "Total Assets (millions)", "Total Contributions (millions)",
                                            "Total Benefits (millions)")
    e1 = layouts["Table E1"].columns
    assert len(e1) == 13 and e1[5] == "Single−Employer Plans Defined Benefit"
    assert e1[12] == "Multiple−Employer Plans Defined Contribution"
    assert layouts["Table E1"].value_counts == {9, 12}  # multiple-employer plans are counted from 2017 on


def test_a_quoted_row_of_the_cleaned_text_reads_cell_by_cell(corpus_mirror):
    document = clean(load_file(corpus_mirror / DOL_TABLES))
    metadata = document.metadata
    start = document.text.index("1990 97,614")
    end = document.text.index("\n", start)
    label, rows = labelled_rows(document.text, start, end, metadata)
    assert label == "Table E19"
    assert rows == ["1990: Number of Plans 97,614 · Active Participants (thousands) 19,466 · Total Assets (millions) "
                    "384,854 · Total Contributions (millions) 48,998 · Total Benefits (millions) 32,028"]
    # a footnote row ("2004r 5 53,100") has neither all cells nor a leading run of them: it stays unlabelled
    start = document.text.index("2004r")
    assert labelled_rows(document.text, start, document.text.index("\n", start), metadata) == ("", [])
    # prose is no table row
    start = document.text.index("NOTES:")
    assert labelled_rows(document.text, start, start + 40, metadata) == ("", [])


def test_a_row_like_line_after_the_table_has_ended_is_not_read_with_its_headings():
    metadata = {"tables": dump_layouts(table_layouts(GROUPED))}
    cleaned = ("Table B2. Plans by sponsor\n1990-1992\n\nAll Plans Small Plans\n\n1990 1,000 2,000 300 400\n"
               "1991 1,100 2,100 310 410\n\nNOTES: figures are rounded.\n\n1993 5 6 7 8\n")
    start = cleaned.index("1991")
    assert labelled_rows(cleaned, start, cleaned.index("\n", start), metadata)[1] == [
        "1991: All Plans Defined Benefit 1,100 · All Plans Defined Contribution 2,100 · Small Plans Defined Benefit "
        "310 · Small Plans Defined Contribution 410"]
    start = cleaned.index("1993")
    assert labelled_rows(cleaned, start, cleaned.index("\n", start), metadata) == ("", [])


def test_rows_after_a_footnote_row_are_still_inside_their_table(corpus_mirror):
    document = clean(load_file(corpus_mirror / DOL_TABLES))
    start = document.text.index("2023 724,720")
    label, rows = labelled_rows(document.text, start, document.text.index("\n", start),
                                document.metadata)
    assert label == "Table E19" and rows[0].startswith("2023: Number of Plans 724,720 · Active Participants")


def test_footnote_marks_above_the_headings_do_not_start_the_rows(corpus_mirror):
    # Table E1's first heading line is its footnote marks ("1 2"): the rows below the headings are still read
    document = clean(load_file(corpus_mirror / DOL_TABLES))
    start = document.text.index("2000 735,651")
    label, rows = labelled_rows(document.text, start, document.text.index("\n", start),
                                document.metadata)
    assert label == "Table E1" and "Single−Employer Plans Defined Contribution 685,639" in rows[0]


def test_the_dol_tables_read_as_yearly_series(corpus_mirror):
    from assistant.tables import table_series

    document = clean(load_file(corpus_mirror / DOL_TABLES))
    series = {s.label: s for s in table_series(document.text, document.metadata["tables"])}
    e19 = series["Table E19"]
    assert e19.title == ("Table E19. Number of 401(k)-Type Plans, Active Participants, Assets, Contributions, "
                         "and Benefits")
    assert [r.year for r in e19.rows] == list(range(1984, 2024))  # "2004r", a revised figure, is no year of its own
    row = e19.rows[12]
    assert document.text[row.start:row.end].split() == ["1996", *row.values] and row.values[2] == "1,061,493"
    e1 = series["Table E1"]
    assert len(e1.rows[0].values) == 9 and len(e1.rows[-1].values) == 12  # columns added in 2017
