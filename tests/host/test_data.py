import json

import pytest

from bilite.data import load_dataset, stratified_split
from bilite.errors import DataError


def test_sms_spam_collection_reads_exactly(sms):
    # 5,574 = 4,827 ham + 747 spam (the upstream readme's counts); CSV quoting would give 5,572.
    assert len(sms) == 5574
    assert sms.labels.count("ham") == 4827 and sms.labels.count("spam") == 747
    assert sms.texts[0].startswith("Go until jurong point")
    assert any('"' in t for t in sms.texts)


def test_csv_tsv_jsonl_with_named_columns(tmp_path):
    (tmp_path / "d.csv").write_text('id,msg,kind\n1,"hello, world",a\n2,"say ""hi""",b\n')
    ds = load_dataset(tmp_path / "d.csv", text_column="msg", label_column="kind")
    assert ds.texts == ["hello, world", 'say "hi"'] and ds.labels == ["a", "b"]
    (tmp_path / "d.tsv").write_text("msg\tkind\nhello\ta\nbye\tb\n")
    assert load_dataset(tmp_path / "d.tsv", text_column="msg", label_column="kind").labels == ["a", "b"]
    rows = [{"t": "x", "y": "p"}, {"t": "z", "y": "q"}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert load_dataset(tmp_path / "d.jsonl", text_column="t", label_column="y").texts == ["x", "z"]


@pytest.mark.parametrize("content, name, message", [
    ("no tab here\n", "d.txt", "expected 'label<TAB>text'"),
    ("a,b\n1,2\n", "d.csv", "column\\(s\\) \\['text', 'label'\\] not found"),
    ('{"text": "x"}\n', "d.jsonl", "expected an object with keys"),
    ("{broken\n", "d.jsonl", "not valid JSON"),
    ("ham\thello\nham\tbye\n", "d.txt", "at least two labels"),
])
def test_bad_datasets_name_the_problem(tmp_path, content, name, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        load_dataset(tmp_path / name)


def test_missing_and_non_utf8(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "nope.txt")
    (tmp_path / "latin1.txt").write_bytes("ham\tcaf\xe9\nspam\tx\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_dataset(tmp_path / "latin1.txt")


def test_split_is_stratified_seeded_and_disjoint(sms):
    train, val, test = stratified_split(sms, seed=3)
    assert len(train) + len(val) + len(test) == len(sms)
    assert test.labels.count("spam") == round(747 * 0.1) and val.labels.count("ham") == round(4827 * 0.1)
    again = stratified_split(sms, seed=3)
    assert again[2].texts == test.texts
    assert stratified_split(sms, seed=4)[2].texts != test.texts


def test_official_test_split_is_kept_whole(tmp_path):
    from bilite.data import split_with_test

    root = __import__("conftest").ROOT / "data" / "banking77"
    train = load_dataset(root / "train.csv", text_column="text", label_column="category")
    test = load_dataset(root / "test.csv", text_column="text", label_column="category")
    assert len(train) == 10003 and len(test) == 3080 and len(train.label_names()) == 77
    tr, val, te = split_with_test(train, test, seed=0)
    assert te is test and len(tr) + len(val) == len(train)
    assert set(val.labels) == set(train.labels)
    odd = load_dataset(root / "test.csv", text_column="text", label_column="category").subset([0, 1])
    odd = type(odd)(odd.texts, ["card_arrival", "no_such_intent"], "x")
    with pytest.raises(DataError, match="no_such_intent"):
        split_with_test(train, odd, seed=0)


def test_labels_with_line_breaks_are_refused_at_load(tmp_path):
    (tmp_path / "d.csv").write_text('text,label\nhello,"spam\nmail"\nbye,ham\n')
    with pytest.raises(DataError, match="contains a tab or line break"):
        load_dataset(tmp_path / "d.csv")


def test_corrupt_gzip_conllu_is_a_data_error(tmp_path):
    from bilite.conllu import load_conllu

    bad = tmp_path / "x.conllu.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)
    with pytest.raises(DataError, match="cannot read"):
        load_conllu(bad)


@pytest.mark.parametrize("name, sep", [("bom.csv", ","), ("bom.tsv", "\t")])
def test_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path, name, sep):
    # Excel's "CSV UTF-8" starts with a BOM; it used to make the header '\ufefftext' in memory,
    # while --stream (which decodes the header as utf-8-sig) read the same file fine.
    from bilite.streaming import open_source

    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + f"text{sep}label\nhello{sep}a\nworld{sep}b\n".encode())
    ds = load_dataset(path)
    assert ds.texts == ["hello", "world"] and ds.labels == ["a", "b"]
    assert open_source(path).columns == (0, 1)  # the streaming reader agrees on the header
    # a BOM is stripped only at the start of the file; a column named '\ufeffx' elsewhere stays
    path.write_bytes(f"label{sep}text\na{sep}\ufeffhi\nb{sep}yo\n".encode())
    assert load_dataset(path).texts == ["\ufeffhi", "yo"]


@pytest.mark.parametrize("name, body", [("bom.txt", "ham\thello\nspam\tworld\n"),
                                        ("bom.jsonl", '{"text": "hello", "label": "ham"}\n'
                                                      '{"text": "world", "label": "spam"}\n')])
def test_byte_order_mark_in_sms_and_jsonl_files_is_dropped_in_memory_and_streamed(tmp_path, name, body):
    """Bug: a BOM made the first SMS label '\\ufeffham' (a third label) and broke a JSONL file's first line."""
    from bilite.streaming import iter_records, open_source

    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    ds = load_dataset(path)
    assert ds.texts == ["hello", "world"] and ds.labels == ["ham", "spam"]
    assert [(text, label) for _, text, label in iter_records(open_source(path))] == list(zip(ds.texts, ds.labels))
