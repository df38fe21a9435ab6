"""load_folds_file: a published subject -> fold split, read from JSON or CSV and checked against the records."""

import json

import pytest

from mater_tf.data.folds import load_folds_file
from mater_tf.errors import UserError

SUBJECTS = ["01", "02", "03", "04", "05", "06"]
FOLDS = [["01", "04"], ["02", "05"], ["03", "06"]]


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "content",
    [
        {"04": 0, "01": 0, "05": 1, "02": 1, "06": 2, "03": 2},  # subject -> fold
        {"01": 1, "04": 1, "02": 2, "05": 2, "03": 3, "06": 3},  # folds numbered from 1
        {"folds": [["04", "01"], ["02", "05"], ["03", "06"]]},
        [["01", "04"], ["05", "02"], ["06", "03"]],
        {"num_folds": 3, "folds": [{"fold": k, "subjects": subjects} for k, subjects in enumerate(FOLDS)]},
    ],
    ids=["mapping", "mapping-from-1", "folds-key", "list", "cv-folds-json"],
)
def test_json_round_trip(tmp_path, content):
    assert load_folds_file(write(tmp_path, "split.json", content), SUBJECTS) == FOLDS


def test_list_keeps_the_files_fold_order(tmp_path):
    path = write(tmp_path, "split.json", [["06", "03"], ["01", "04"], ["02", "05"]])
    assert load_folds_file(path, SUBJECTS) == [["03", "06"], ["01", "04"], ["02", "05"]]


def test_labels_take_their_natural_order(tmp_path):
    labels = {"01": "fold10", "02": "fold2", "03": "fold1"}
    assert load_folds_file(write(tmp_path, "s.json", labels), ["01", "02", "03"]) == [["03"], ["02"], ["01"]]


def test_csv_round_trip_with_bom_extra_columns_and_any_column_order(tmp_path):
    rows = "\ufeffFold,Subject,gender\r\n" + "".join(
        f"{fold + 1},{subject},x\r\n" for fold, subjects in enumerate(FOLDS) for subject in subjects
    )
    assert load_folds_file(write(tmp_path, "split.csv", rows + "\r\n"), SUBJECTS) == FOLDS


def test_what_cv_would_write_reads_back(tmp_path):
    folds = load_folds_file(write(tmp_path, "a.json", FOLDS), SUBJECTS)
    path = write(tmp_path, "b.json", {subject: k for k, subjects in enumerate(folds) for subject in subjects})
    assert load_folds_file(path, SUBJECTS) == folds


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "s.json",
            [["01", "04", "02"], ["02", "05"], ["03", "06"]],
            r"subject '02' is in fold 0 and in fold 1",
        ),
        ("s.csv", "subject,fold\n01,0\n01,1\n", r"subject '01' is in fold 0 and in fold 1; keep one row"),
        ("s.json", [["01"], ["02", "05"], ["03", "06"]], r"subjects 04 are in no fold; add them to the file"),
        (
            "s.json",
            FOLDS + [["07", "08"]],
            r"subjects 07, 08 are not in the records; remove them from the file",
        ),
        ("s.json", [["01", "02", "03", "04", "05", "06"]], r"has 1 fold; .*at least 2.*2 or more folds"),
        ("s.json", FOLDS + [[]], r"fold 3 has no subjects; remove it"),
        ("s.json", "{not json", r"not valid JSON"),
        ("s.json", {"folds": "01,02"}, r"not a split; write JSON"),
        ("s.json", {"01": [0]}, r"fold of subject '01' is \[0\]; give an integer or a name"),
        ("s.csv", "01,0\n02,1\n", r"header naming the columns subject and fold.*add the line subject,fold"),
        ("s.csv", "", r"header.*an empty file"),
        ("s.csv", "subject,fold\n01,\n", r"row 2 has no subject or no fold"),
        ("s.txt", "01,0\n", r"must end in .json or .csv"),
        (
            "s.csv",
            "subject,fold\n01,0\n02,1\n03,-1\n04,0\n05,1\n06,-1\n",
            r"fold of subject '03' is -1; fold numbers are 0 or more",
        ),
        ("s.json", {"01": 0, "02": -1}, r"fold of subject '02' is -1"),
    ],
)
def test_refusals_name_the_file_and_the_fix(tmp_path, name, content, message):
    path = write(tmp_path, name, content)
    with pytest.raises(UserError, match=message) as caught:
        load_folds_file(path, SUBJECTS)
    text = str(caught.value)
    assert str(path) in text and "\n" not in text


def test_a_missing_file_says_how_to_go_without_one(tmp_path):
    with pytest.raises(UserError, match=r"not found.*--set cv.folds_file= "):
        load_folds_file(tmp_path / "nope.json", SUBJECTS)


def test_many_missing_subjects_are_named_then_counted(tmp_path):
    subjects = [f"{n:02d}" for n in range(30)]
    with pytest.raises(UserError, match=r"00, 01, .*, 09 and 18 more are in no fold") as caught:
        load_folds_file(write(tmp_path, "s.json", [["28"], ["29"]]), subjects)
    assert "10," not in str(caught.value)


def test_no_test_fold_puts_every_subject_in_training_and_needs_no_validation():
    from mater_tf.config import load_config
    from mater_tf.data.folds import split_for_fold

    split = split_for_fold(FOLDS, -1, validation=False)
    assert sorted(split.train) == SUBJECTS and split.test == split.validation == ()
    with pytest.raises(UserError, match="cv.test_fold=-1 .* add --set cv.validation=false"):
        split_for_fold(FOLDS, -1, validation=True)
    with pytest.raises(
        UserError, match=r"cv.test_fold=-1 \(no test fold: every subject trains\) leaves no fold"
    ):
        load_config("quickstart", ["cv.test_fold=-1"])
    allowed = ["cv.test_fold=-1", "cv.validation=false", "train.early_stopping_patience=0"]
    assert load_config("quickstart", allowed).cv.test_fold == -1
    with pytest.raises(UserError, match="cv.test_fold=-2 must be in"):
        load_config("quickstart", ["cv.test_fold=-2"])
