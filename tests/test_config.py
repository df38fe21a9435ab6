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
        ("cv.validation=false", "early_stopping_patience needs validation subjects"),
    ],
)
def test_bad_values_are_rejected(assignment, message):
    with pytest.raises(UserError, match=message):
        config_lib.load_config("quickstart", [assignment])


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
