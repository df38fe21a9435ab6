import pytest
import yaml

from mater_tf import config as config_lib
from mater_tf.errors import UserError


def test_defaults_follow_the_paper():
    config = config_lib.ExperimentConfig()
    assert (config.train.batch_size, config.train.epochs) == (64, 300)
    assert config.train.learning_rate == 1e-6
    assert config.train.lr_patience == 20
    assert config.model.num_layers == 6
    assert config.cv.num_folds == 12


def test_yaml_then_set_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "model": {"num_heads": 2, "d_model": 8}}))
    config = config_lib.load_config(
        path, ["model.num_heads=4", "model.modalities=audio", "train.learning_rate=1e-3"]
    )
    assert config.name == "x"
    assert config.model.num_heads == 4
    assert config.model.d_model == 8
    assert config.model.modalities == ["audio"]
    assert config.train.learning_rate == pytest.approx(1e-3)


def test_round_trip_through_yaml(tiny_config):
    again = config_lib.config_from_dict(yaml.safe_load(tiny_config.to_yaml()))
    assert again == tiny_config
    assert again.fingerprint() == tiny_config.fingerprint()


def test_fingerprint_changes_with_any_value(tiny_config):
    other = config_lib.load_config("quickstart", ["model.num_heads=2"])
    assert other.fingerprint() != config_lib.load_config("quickstart").fingerprint()


def test_unknown_key_names_the_key_and_suggests(tmp_path):
    with pytest.raises(UserError, match=r"unknown config key 'model.num_head'.*did you mean 'num_heads'"):
        config_lib.load_config("quickstart", ["model.num_head=4"])
    path = tmp_path / "bad.yaml"
    path.write_text("trian:\n  epochs: 3\n")
    with pytest.raises(UserError, match="unknown config key 'trian'.*'train'"):
        config_lib.load_config(path)


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("model.num_heads=3", "must divide"),
        ("model.dropout=1.5", "dropout"),
        ("model.modalities=audio,voice", "subset"),
        ("model.encoder=gru", "encoder"),
        ("train.epochs=abc", "train.epochs='abc' must be an int"),
        ("train.batch_size=0", "batch_size"),
        ("cv.test_fold=12", "test_fold"),
        ("model.attention=maybe", "model.attention='maybe' must be a bool"),
        ("train.lr_schedule=step", "lr_schedule"),
        ("model.log_mel_normalization=loud", "log_mel_normalization"),
        ("model.audio_frontend_filters=16,0", r"audio_frontend_filters=\[16, 0\] must be one or more"),
        ("model.audio_frontend_pooling=max", "audio_frontend_pooling"),
        ("train.mixup_alpha=-0.2", "mixup_alpha"),
        ("train.label_smoothing=1", r"train.label_smoothing=1.0 must be in \[0, 1\)"),
        (
            "model.audio_frontend=small model.log_mel_normalization=clip model.augment.gain_db=6",
            "gain_db=6.0 does nothing with model.log_mel_normalization=clip",
        ),
        (
            "model.audio_frontend=vggish model.audio_frontend_filters=8,16",
            "the vggish front end has VGGish's own",
        ),
        (
            "model.audio_frontend=stats model.audio_frontend_filters=8,16",
            "the stats front end has no convolution",
        ),
        (
            "model.audio_frontend=stats model.audio_frontend_pooling=band_stats",
            "the stats front end has no convolution",
        ),
        (
            "model.audio_frontend=stats model.band_statistics=mean,pitch",
            "band_statistics=\\['mean', 'pitch'\\]",
        ),
        ("model.audio_frontend=stats model.band_statistics=mean,mean", "must be distinct names"),
        ("model.audio_frontend=stats model.band_statistics=[mean,[std]]", "must be a list of str"),
        ("model.modalities=[audio,[face]]", "must be a list of str"),
        ("model.audio_frontend=small model.audio_frontend_filters=[8,[16]]", "must be a list of int"),
        ("model.audio_frontend=small model.band_statistics=mean", "shapes the stats front end"),
        ("model.window_pooling=cat", "window_pooling"),
        ("model.num_layers=-1", "num_layers"),
        ("train.weight_decay=-0.1", "weight_decay"),
        ("tune.num_layers=[-1,2]", r"tune.num_layers=\[-1, 2\] must hold values >= 0"),
        ("train.jit_compile=xla", "train.jit_compile='xla' must be one of auto, true, false"),
        ("cv.validation=false", "early_stopping_patience needs validation subjects"),
    ],
)
def test_bad_values_are_rejected(assignment, message):
    with pytest.raises(UserError, match=message):
        config_lib.load_config("quickstart", assignment.split(" "))  # several: space-separated


def test_jit_compile_from_yaml_and_set(tmp_path):
    from mater_tf.training.task import Task

    path = tmp_path / "xla.yaml"
    path.write_text("base: quickstart\ntrain:\n  jit_compile: true\n")  # YAML reads `true` as a bool
    config = config_lib.load_config(path)
    assert config.train.jit_compile == "true" and Task(config, None).jit_compile is True
    config = config_lib.load_config("quickstart", ["train.jit_compile=False"])
    assert config.train.jit_compile == "false" and Task(config, None).jit_compile is False


def test_missing_experiment_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="not found"):
        config_lib.load_config(tmp_path / "nope.yaml")
    path = tmp_path / "broken.yaml"
    path.write_text("model: [1, 2\n")
    with pytest.raises(UserError, match="not valid YAML"):
        config_lib.load_config(path)


@pytest.mark.parametrize("assignment", ["model.num_heads", "=4", "model..num_heads=4"])
def test_set_without_key_and_value(assignment):
    with pytest.raises(UserError, match="is not key=value"):
        config_lib.load_config("quickstart", [assignment])


def test_a_preset_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart").mkdir()  # e.g. experiments made under the working directory
    assert config_lib.load_config("quickstart").name == "quickstart"


def test_pretrained_vggish_front_end_needs_the_raw_log_mel():
    weights = ["model.audio_frontend=vggish", "model.audio_frontend_weights=vggish_model.ckpt"]
    with pytest.raises(UserError, match="model.log_mel_normalization=none"):
        config_lib.load_config("quickstart", weights)
    assert config_lib.load_config("quickstart", weights + ["model.log_mel_normalization=none"])


@pytest.mark.parametrize(
    "assignment, expected",
    [
        ("model.modalities=audio", ["audio"]),
        ("model.modalities=audio,face", ["audio", "face"]),
        ("model.modalities=[face]", ["face"]),
        ("tune.num_heads=2,4", [2, 4]),
        ("tune.num_layers=0,2", [0, 2]),  # 0 layers: the no-encoder ablation
        ("tune.learning_rate=[1e-4, 1e-2]", [1e-4, 1e-2]),
        ("tune.dropout=", []),
    ],
)
def test_set_fills_a_list_field_from_a_comma_list_or_yaml(assignment, expected):
    key, _, _ = assignment.partition("=")
    section, name = key.split(".")
    value = getattr(getattr(config_lib.load_config("quickstart", [assignment]), section), name)
    assert value == expected and all(type(v) is type(e) for v, e in zip(value, expected))


def test_a_string_field_keeps_the_text_as_typed():
    config = config_lib.load_config("quickstart", ["name=1e-3", "description=yes", "paper.table1="])
    assert (config.name, config.description, config.paper.table1) == ("1e-3", "yes", "")


def test_yaml_numbers_without_a_dot_read_as_floats(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("train:\n  learning_rate: 1e-3\ntune:\n  learning_rate: [1e-5, 1e-2]\n")
    config = config_lib.load_config(path)
    assert config.train.learning_rate == pytest.approx(1e-3)
    assert config.tune.learning_rate == pytest.approx([1e-5, 1e-2])


def test_the_fingerprint_is_a_function_of_the_resolved_values(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("base: quickstart\nmodel:\n  num_heads: 2\n")
    from_yaml = config_lib.load_config(path)
    from_set = config_lib.load_config("quickstart", ["model.num_heads=2"])
    assert from_yaml == from_set and from_yaml.fingerprint() == from_set.fingerprint()


@pytest.mark.parametrize(
    "text, message",
    [
        ("model: 3\n", "config section model must be a mapping of its keys"),
        ("data:\n  synthetic: 4\n", "config section data.synthetic must be a mapping"),
        ("model:\n  modalities: audio\n", r"model.modalities='audio' must be a list of str"),
        ("data: {synthetic: {num_classes: 3.5}}\n", r"data.synthetic.num_classes=3.5 must be an int"),
        ("paper:\n  table1:\n", "config key paper.table1 has no value; give a string"),
        ("- a\n", "must be a mapping of sections"),
        ("", "empty; an experiment YAML sets what it changes"),
        ("# only a comment\n", "empty; .*leave out --experiment"),
        ("model:\n  heads: 3\n", r"unknown config key 'model.heads' \(did you mean 'num_heads'\?\)"),
    ],
)
def test_yaml_mistakes_name_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as caught:
        config_lib.load_config(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_a_mistake_in_a_base_yaml_names_that_file(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  epoch: 3\n")
    (tmp_path / "exp.yaml").write_text("base: base.yaml\n")
    with pytest.raises(UserError, match=r"base.yaml: unknown config key 'train.epoch'.*'epochs'"):
        config_lib.load_config(tmp_path / "exp.yaml")


def test_a_run_config_with_an_unknown_key_names_the_file(tmp_path, tiny_config):
    values = tiny_config.to_dict()
    values["model"]["num_head"] = 4
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(values))
    with pytest.raises(UserError, match=r"config.yaml: unknown config key 'model.num_head'"):
        config_lib.read_run_config(tmp_path)


@pytest.mark.parametrize(
    "bad, fixes",
    [
        (["model.num_heads=3"], ["model.num_heads=2"]),
        (["model.dropout=1.5"], ["model.dropout=0.1"]),
        (["cv.num_folds=2"], ["cv.num_folds=3"]),
        (["cv.num_folds=2"], ["cv.validation=false", "train.early_stopping_patience=0"]),
        (["cv.validation=false"], ["train.early_stopping_patience=0"]),
        (["cv.test_fold=12"], ["cv.test_fold=0"]),
        (["cv.folds_file=split.txt"], ["cv.folds_file="]),
        (
            ["model.audio_frontend_weights=w.ckpt"],
            ["model.audio_frontend=vggish", "model.log_mel_normalization=none"],
        ),
        (["model.audio_frontend_weights=w.ckpt"], ["model.audio_frontend_weights="]),
        (["model.modalities=audio,audio"], ["model.modalities=audio"]),
        (
            ["model.audio_frontend=small", "model.audio_frontend_filters=8,16", "model.band_statistics=mean"],
            ["model.audio_frontend_pooling=band_stats"],
        ),
        (
            ["model.audio_frontend=small", "model.band_statistics=mean"],
            ["model.band_statistics=mean,std,change"],
        ),
        (["train.label_smoothing=1"], ["train.label_smoothing=0.0"]),
        (["tune.algorithm=grid"], ["tune.algorithm=random"]),
        (["tune.learning_rate=1"], ["tune.learning_rate=[1e-5,1e-2]"]),
        (["tune.learning_rate=[1e-2,1e-5]"], ["tune.learning_rate=[1e-5,1e-2]"]),
        (["paper.table3=nope"], ["paper.table3=ravdess-attention"]),
        (["train.learning_rate=0"], ["train.learning_rate=1e-06"]),
        (["data.synthetic.evidence_windows=4"], ["data.synthetic.evidence_windows=3"]),
        (["data.synthetic.min_valid_windows=9"], ["data.synthetic.min_valid_windows=8"]),
    ],
)
def test_every_refusal_names_a_fix_that_works(bad, fixes):
    with pytest.raises(UserError) as caught:
        config_lib.load_config("quickstart", bad)
    message = str(caught.value)
    assert all(fix in message for fix in fixes), message
    assert config_lib.load_config("quickstart", bad + fixes)


def test_each_section_checks_its_own_fields():
    config_lib.ExperimentConfig().model.validate()
    with pytest.raises(UserError, match="must divide"):
        config_lib.ModelConfig(d_model=8, num_heads=3).validate()
    with pytest.raises(UserError, match="cv.validation=false"):
        config_lib.CVConfig(num_folds=2).validate()
    config_lib.CVConfig(num_folds=2, validation=False).validate()
    with pytest.raises(UserError, match="paper.table1"):
        config_lib.PaperConfig(table1="row").validate()
    with pytest.raises(UserError, match="data.synthetic.num_classes"):
        config_lib.DataConfig(synthetic=config_lib.SyntheticConfig(num_classes=2)).validate()


def test_every_knob_has_a_one_line_doc():
    import dataclasses

    def knobs(section, prefix):
        for field in dataclasses.fields(section):
            value = getattr(section, field.name)
            if dataclasses.is_dataclass(value):
                yield from knobs(value, f"{prefix}{field.name}.")
            else:
                yield f"{prefix}{field.name}", field.metadata.get("doc", "")

    docs = dict(knobs(config_lib.ExperimentConfig(), ""))
    assert "cv.folds_file" in docs and docs["cv.folds_file"].startswith("A JSON or CSV")
    assert all(doc and "\n" not in doc for doc in docs.values()), [k for k, d in docs.items() if not d]


def test_config_imports_neither_reporting_nor_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, mater_tf.config; "
        "print(sorted(m for m in sys.modules if m.startswith(('mater_tf.reporting', 'tensorflow', 'keras'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_reporting_reads_the_same_tables():
    from mater_tf.reporting import paper

    assert paper.TABLE1 is config_lib.TABLE1 and paper.TABLE3 is config_lib.TABLE3
