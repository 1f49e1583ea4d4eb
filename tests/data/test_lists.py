"""Annotation lists read as written: a byte-order mark ignored, bad labels as one-line errors
naming file, line and value, every line left out counted in one warning, and name lists
(exclusion lists, missing videos) that give back any name written into them."""

import json
import logging

import pytest

from videotl.data.charades import read_charades_classes, read_charades_csv
from videotl.data.lists import (
    AnnotationError,
    Comment,
    VideoEntry,
    apply_exclusions,
    name_line,
    read_class_names,
    read_exclusions,
    read_video_list,
)
from videotl.prep.files import write_name_list

BOM = "\ufeff"
CHARADES_HEADER = ("id,subject,scene,quality,relevance,verified,script,objects,descriptions,"
                   "actions,length\n")
# Every kind of name the preparation scripts can write into a name list: Charades ids are any
# CSV field, file names any bytes but '/' and NUL.
HOSTILE_NAMES = [
    "#AB12C", "# spaced", "#", "a\nb", "a\r\nb", "cr\rx", " lead", "trail ", "  ", "tab\there",
    "a,b", "it's \"quoted\"", '"quoted"', '"', "vidéo 日本", "back\\slash", "end\\",
    "sep\u2028line", "nbsp\u00a0x", "bell\x07", "undecodable\udcff.mp4", "emoji 🎬", "\\n",
    "x" * 300, "plain.mp4", "dir/clip one.mp4",
]


def write(path, text, bom=False):
    path.write_bytes(((BOM if bom else "") + text).encode("utf-8"))
    return path


def warnings_about(caplog, path):
    return [r for r in caplog.records if r.levelno == logging.WARNING and str(path) in r.message]


# A byte-order mark (Windows editors write one) is not part of the first line.

@pytest.mark.parametrize("suffix, text", [(".txt", "walk\nrun\n"),
                                          (".json", '["walk", "run"]'),
                                          (".json", '{"run": 1, "walk": 0}')])
def test_class_files_with_a_byte_order_mark(tmp_path, suffix, text):
    assert read_class_names(write(tmp_path / f"c{suffix}", text, bom=True)) == ["walk", "run"]


def test_video_and_exclusion_lists_with_a_byte_order_mark(tmp_path):
    listed = read_video_list(write(tmp_path / "train.csv", "a.mp4 1\nb.mp4 0\n", bom=True),
                             tmp_path, None, 2)
    assert [(e.video_id, e.label) for e in listed] == [("a.mp4", 1), ("b.mp4", 0)]
    header = read_video_list(write(tmp_path / "h.csv", "path,label\na.mp4,1\n", bom=True),
                             tmp_path, None, 2)
    assert [e.video_id for e in header] == ["a.mp4"]
    assert read_exclusions(write(tmp_path / "x.txt", "a.mp4\n", bom=True)) == ["a.mp4"]


def test_charades_files_with_a_byte_order_mark(tmp_path):
    names, index_of = read_charades_classes(
        write(tmp_path / "classes.txt", "c000 Holding a cup\nc001 Sitting\n", bom=True))
    assert names == ["Holding a cup", "Sitting"] and index_of == {"c000": 0, "c001": 1}
    table = write(tmp_path / "train.csv",
                  CHARADES_HEADER + 'AB12C,S1,room,7,7,Yes,"a, b",o,d,c001 1.0 2.0,10\n', bom=True)
    [entry] = read_charades_csv(table, tmp_path, index_of)
    assert (entry.video_id, entry.actions) == ("AB12C", ((1, 1.0, 2.0),))


# Labels: one AnnotationError naming file, line and value, never a ValueError from int().

@pytest.mark.parametrize("label, message", [
    ("\u00b2", r"train\.csv:2: label '\u00b2' is neither a class index"),  # '²'.isdigit()
    ("--3", r"train\.csv:2: label '--3' is neither a class index"),
    ("\u0663", r"train\.csv:2: label '\u0663' is neither"),  # Arabic-Indic 3: int() takes it
    ("1.0", r"train\.csv:2: label '1\.0' is neither a class index \(an integer\)"),
    ("-1", r"train\.csv:2: label -1 outside \[0, 3\)"),
    ("3", r"train\.csv:2: label 3 outside \[0, 3\)"),
    ("99999999999999999999999", r"train\.csv:2: label 99999999999999999999999 outside"),
])
def test_bad_labels_name_file_line_and_value(tmp_path, label, message):
    listed = write(tmp_path / "train.csv", f"a.mp4 0\nb.mp4 {label}\n")
    with pytest.raises(AnnotationError, match=message) as error:
        read_video_list(listed, tmp_path, ["a", "b", "c"], 3)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("content, message", [
    ({"walk": "first", "run": 1}, r"ids\.json: class 'walk' has index 'first', not an integer"),
    ({"walk": 0, "run": 0, "jump": 1}, r"ids\.json: classes 'walk' and 'run' share index 0"),
    ({"walk": 0.5}, r"class 'walk' has index 0\.5"),
    (["walk", 3], r"class names must be strings, got 3"),
])
def test_bad_json_class_files(tmp_path, content, message):
    with pytest.raises(AnnotationError, match=message):
        read_class_names(write(tmp_path / "ids.json", json.dumps(content)))


def test_json_class_file_errors_name_the_line(tmp_path):
    with pytest.raises(AnnotationError, match=r"ids\.json:2: not valid JSON"):
        read_class_names(write(tmp_path / "ids.json", '{"walk": 0,\n "run" 1}'))
    with pytest.raises(AnnotationError, match=r"ids\.json: keys given twice: \['walk'\]"):
        read_class_names(write(tmp_path / "ids.json", '{"walk": 0, "run": 1, "walk": 2}'))
    assert read_class_names(write(tmp_path / "ids.json", '{"run": "1", "walk": "0"}')) == [
        "walk", "run"]


def test_lists_that_are_not_utf8_name_the_line(tmp_path):
    listed = tmp_path / "train.csv"
    listed.write_bytes(b"a.mp4 0\nb\xe9.mp4 0\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:2: not UTF-8 text"):
        read_video_list(listed, tmp_path, None, 1)
    with pytest.raises(AnnotationError, match=r"x\.txt:2: not UTF-8"):
        read_exclusions(listed.rename(tmp_path / "x.txt"))


# Nothing left out without a word: one warning per file, with the count and examples.

def test_left_out_video_list_lines_are_counted_once(tmp_path, caplog):
    listed = write(tmp_path / "train.csv",
                   "a.mp4 0\n#b.mp4 1\n\nc.mp4 1\na.mp4 0\n# a note\nc.mp4 1\nc.mp4 0\n")
    with caplog.at_level(logging.WARNING):
        entries = read_video_list(listed, tmp_path, None, 2)
    # Exact repeats are left out; a video listed again with another label is kept.
    assert [(e.video_id, e.label) for e in entries] == [("a.mp4", 0), ("c.mp4", 1), ("c.mp4", 0)]
    [record] = warnings_about(caplog, listed)
    assert "4 lines ignored (2 comment lines, 2 repeated rows)" in record.message
    assert "line 2: '#b.mp4 1'; line 5: 'a.mp4 0'; line 6: '# a note'; ... and 1 more" \
        in record.message


def test_a_clean_list_warns_nothing(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        read_video_list(write(tmp_path / "train.csv", "path,label\na.mp4 0\n\n"), tmp_path,
                        None, 1)
        read_class_names(write(tmp_path / "classes.txt", "walk\nrun\n\n\n"))
    assert not caplog.records


def test_blank_lines_between_class_names_are_reported(tmp_path, caplog):
    names = write(tmp_path / "classes.txt", "\nwalk\n\nrun\n\n")
    with caplog.at_level(logging.WARNING):
        assert read_class_names(names) == ["walk", "run"]
    [record] = warnings_about(caplog, names)
    assert "2 lines ignored (2 blank lines between class names), e.g. line 1: ''; line 3" \
        in record.message


def test_charades_repeated_ids_short_rows_and_bad_times(tmp_path, caplog):
    _, index_of = read_charades_classes(write(tmp_path / "classes.txt", "c000 A\nc001 B\n"))
    row = 'AB12C,S1,room,7,7,Yes,"a, b",o,d,{actions},10\n'
    table = write(tmp_path / "train.csv", CHARADES_HEADER + row.format(actions="c001 1 2")
                  + row.replace("AB12C", "XY").format(actions="") + row.format(actions="c001 1 2"))
    with caplog.at_level(logging.WARNING):
        entries = read_charades_csv(table, tmp_path, index_of)
    assert [(e.video_id, e.actions) for e in entries] == [("AB12C", ((1, 1.0, 2.0),)),
                                                          ("XY", ())]  # no actions: kept
    [record] = warnings_about(caplog, table)
    assert "1 lines ignored (1 repeated ids), e.g. line 4: 'AB12C'" in record.message
    for text, message in [
        (row.format(actions="c001 1 2") + row.format(actions="c000 0 1"),
         r"train\.csv:3 \(id AB12C\): id 'AB12C' repeated with other actions"),
        ("AB12C,S1,room\n", r"train\.csv:2 \(id AB12C\): 3 fields, expected 11"),
        (row.format(actions="c001 1 2").replace('"a, b",', ""),
         r"train\.csv:2 .*10 fields, expected 11"),
        (row.format(actions="c001 1 2").replace("o,d", "o,d,extra"),
         r"train\.csv:2 .*12 fields, expected 11"),
        (row.format(actions="c001 nan 2"), r"train\.csv:2 \(id AB12C\): bad times"),
    ]:
        write(table, CHARADES_HEADER + text)
        with pytest.raises(AnnotationError, match=message):
            read_charades_csv(table, tmp_path, index_of)


# Name lists: any name written reads back unchanged; plain names stay plain lines.

def test_name_list_round_trip_of_hostile_names(tmp_path):
    path = tmp_path / "exclude.txt"
    write_name_list(path, [Comment("a comment\nover two lines"), *HOSTILE_NAMES, Comment("")])
    assert read_exclusions(path) == HOSTILE_NAMES
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) == len(HOSTILE_NAMES) + 2  # one line per name or comment
    for plain in ("a,b", "it's \"quoted\"", "vidéo 日本", "back\\slash", "end\\", "emoji 🎬",
                  "plain.mp4", "dir/clip one.mp4", "\\n"):
        assert name_line(plain) == plain and f"\n{plain}\n" in text
    assert name_line("#AB12C") == '"#AB12C"' and name_line("a\nb") == '"a\\nb"'
    assert name_line("undecodable\udcff.mp4") == '"undecodable\\udcff.mp4"'
    assert text.startswith("# a comment over two lines\n") and text.endswith("\n#\n")


def test_name_lists_written_before_read_as_before(tmp_path):
    old = write(tmp_path / "old.txt", "# known bad\r\n  a.mp4  \r\n\r\n\tb c.mp4\n  # indented\n"
                "it's.mp4\n")
    assert read_exclusions(old) == ["a.mp4", "b c.mp4", "it's.mp4"]
    bad = write(tmp_path / "bad.txt", 'a.mp4\n"unterminated\n')
    with pytest.raises(AnnotationError, match=r"bad\.txt:2: a line starting with '\"' must be one "
                                              "JSON string"):
        read_exclusions(bad)
    write(bad, '"a" "b"\n')
    with pytest.raises(AnnotationError, match=r"bad\.txt:1: "):
        read_exclusions(bad)


def test_excluded_by_any_name(tmp_path):
    videos = [VideoEntry(str(tmp_path / f"{n}.mp4"), name) for n, name in enumerate(HOSTILE_NAMES)]
    path = tmp_path / "exclude.txt"
    write_name_list(path, HOSTILE_NAMES[::2])
    kept, excluded = apply_exclusions(videos, str(path), str(tmp_path), "train")
    assert excluded == HOSTILE_NAMES[::2]
    assert [entry.video_id for entry in kept] == HOSTILE_NAMES[1::2]
