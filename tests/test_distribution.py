"""train.distribution: one-replica mirrored training equals plain training, two workers on
127.0.0.1 end with the same weights, and a bad setting or TF_CONFIG is one clear line."""

import csv
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import keras
import numpy as np
import pytest

from mater_tf.cli.main import main
from mater_tf.errors import UserError
from mater_tf.training import cluster_wait, distribution, rundir
from mater_tf.training.cluster import TF_CONFIG, read_tf_config

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    return lines[0]


def cluster(workers=2, chief=False, task_type="worker", index=0) -> str:
    spec = {"worker": [f"127.0.0.1:{2000 + i}" for i in range(workers)]}
    if chief:
        spec["chief"] = ["127.0.0.1:1999"]
    return json.dumps({"cluster": spec, "task": {"type": task_type, "index": index}})


def test_the_chief_is_the_chief_task_else_worker_0():
    read = read_tf_config
    first, second = read({"TF_CONFIG": cluster()}), read({"TF_CONFIG": cluster(index=1)})
    assert (first.is_chief, second.is_chief, first.num_workers) == (True, False, 2)
    with_chief = cluster(chief=True, index=0)
    assert not read({"TF_CONFIG": with_chief}).is_chief
    chief = read({"TF_CONFIG": cluster(chief=True, task_type="chief")})
    assert chief.is_chief and chief.num_workers == 3


@pytest.mark.parametrize(
    ("tf_config", "says"),
    [
        ("", "is not set"),
        ("{'cluster': ", "is not valid JSON"),
        ('{"task": {"type": "worker", "index": 0}}', 'no "cluster"'),
        ('{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, "task": {"type": "worker"}}', '"ps" task type'),
        ('{"cluster": {"worker": ["h"]}, "task": {"type": "worker", "index": 0}}', 'not "host:port"'),
        (
            '{"cluster": {"worker": ["h:70000"]}, "task": {"type": "worker", "index": 0}}',
            "a port is 1 to 65535",
        ),
        (cluster(index=2), "task index 2 is not in [0, 2)"),
        ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "evaluator"}}', '"task" must name a type'),
    ],
)
def test_a_bad_tf_config_is_refused_naming_the_problem(tf_config, says):
    with pytest.raises(UserError) as raised:
        read_tf_config({"TF_CONFIG": tf_config})
    message = str(raised.value)
    assert says in message and "TF_CONFIG" in message and "\n" not in message


def test_bad_distribution_settings_are_one_line(tmp_path, capsys, cli_command, tiny_overrides, monkeypatch):
    command = cli_command("train", tmp_path, "r", [*tiny_overrides, "train.distribution=ring"])
    assert main(command) == 2
    line = error_line(capsys)
    assert "train.distribution='ring' must be one of none, mirrored, multi_worker" in line
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"index": 0}')
    command = cli_command("train", tmp_path, "r", [*tiny_overrides, "train.distribution=multi_worker"])
    assert main(command) == 2
    assert "TF_CONFIG is not valid JSON" in error_line(capsys)
    assert not (tmp_path / "quickstart").exists()  # refused before anything was written


def _worker_env(addresses, index):
    """The environment of worker `index` of a loopback cluster: this checkout importable, its TF_CONFIG."""
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        TF_CONFIG=json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}),
    )


@pytest.mark.slow
def test_mirrored_on_one_cpu_trains_as_without_distribution(tiny_config, tmp_path, fit_in):
    # No validation split: the cheapest run that still trains, evaluates and saves.
    plain = dataclasses.replace(
        tiny_config,
        cv=dataclasses.replace(tiny_config.cv, validation=False),
        train=dataclasses.replace(tiny_config.train, early_stopping_patience=0),
    )
    mirrored = dataclasses.replace(plain, train=dataclasses.replace(plain.train, distribution="mirrored"))
    plain_metrics, plain_run = fit_in(plain, tmp_path / "none")
    mirrored_metrics, mirrored_run = fit_in(mirrored, tmp_path / "mirrored")
    assert distribution.strategy_for(mirrored).num_replicas_in_sync == 1  # this machine has no GPU
    plain_weights = keras.models.load_model(plain_run.model).get_weights()
    mirrored_weights = keras.models.load_model(mirrored_run.model).get_weights()
    assert len(plain_weights) == len(mirrored_weights)
    for plain, other in zip(plain_weights, mirrored_weights):
        np.testing.assert_allclose(other, plain, rtol=1e-5, atol=1e-6)
    plain_history = list(csv.DictReader(plain_run.history.open()))
    mirrored_history = list(csv.DictReader(mirrored_run.history.open()))
    for row, other in zip(plain_history, mirrored_history, strict=True):
        assert float(other["loss"]) == pytest.approx(float(row["loss"]), rel=1e-5)
    assert mirrored_metrics["test"]["av"]["accuracy"] == plain_metrics["test"]["av"]["accuracy"]
    assert sorted(p.name for p in mirrored_run.root.iterdir()) == sorted(
        p.name for p in plain_run.root.iterdir()
    )


# A worker: `mater-tf train` with TF_CONFIG, which also saves the weights it trained
# (the plain copy the run evaluates and exports) for the test to compare.
WORKER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from mater_tf.cli.main import main
    from mater_tf.training import model_copy

    copy = model_copy.plain_copy

    def copy_and_save(*args):
        model = copy(*args)
        np.savez(sys.argv[1], *model.get_weights())
        return model

    model_copy.plain_copy = copy_and_save
    sys.exit(main(sys.argv[2:]))
    """
)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_on_loopback_end_with_the_same_weights_and_the_chief_writes_the_run(
    tmp_path, cli_command, tiny_overrides
):
    overrides = [o for o in tiny_overrides if not o.startswith("train.epochs")]
    overrides += ["train.epochs=2", "train.distribution=multi_worker"]
    command = cli_command("train", tmp_path / "runs", "r", overrides)  # one workdir, as on shared storage
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    workers = []
    for index in range(2):
        env = _worker_env(addresses, index)
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(tmp_path / f"weights{index}.npz"), *command],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=400)[0])
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
    assert "worker 1 of 2 workers (not the chief)" in outputs[1]
    for output in outputs:  # the gRPC server's and coordination agent's start-up lines are held back
        assert "Started server with target" not in output and "absl::InitializeLog" not in output, output
    first, second = (np.load(tmp_path / f"weights{index}.npz") for index in range(2))
    assert len(first.files) == len(second.files) > 0
    for name in first.files:
        np.testing.assert_array_equal(first[name], second[name])
    run = rundir.RunDir(tmp_path / "runs" / "quickstart" / "r")
    losses = [float(row["loss"]) for row in csv.DictReader(run.history.open())]
    assert len(losses) == 2 and losses[1] < losses[0]
    # The chief's run directory holds what a single-worker run's does; the other worker
    # wrote nothing there, nor anywhere it left behind.
    assert {p.name for p in run.root.iterdir()} == {
        ".lock", "config.yaml", "split.json", "data", "logs", "history.csv", "checkpoints",
        "model.keras", "metrics.json", "timing.json", "export",
        "confusion_av.png", "confusion_audio.png", "confusion_face.png",
    }  # fmt: skip
    assert [p.name for p in (tmp_path / "runs" / "quickstart").iterdir()] == ["r"]
    scratch = [line.rsplit(" ", 1)[1] for line in outputs[1].splitlines() if "this worker writes" in line]
    assert scratch and not Path(scratch[0]).exists()
    metrics = json.loads(run.metrics.read_text())
    assert metrics["test"]["av"]["num_clips"] == 24  # every test clip once, not once per worker


def test_cv_refuses_a_copied_in_fold_of_another_config(tmp_path, capsys, cli_command, tiny_overrides):
    # The recipe that spreads folds over machines copies `mater-tf train` runs in as fold_XX/;
    # one trained with other settings must not be summarised as this experiment's fold.
    from mater_tf.config import load_config

    other = load_config("quickstart", [*tiny_overrides, "cv.test_fold=0", "model.d_model=16"])
    fold = tmp_path / "quickstart" / "cv" / "fold_00"
    fold.mkdir(parents=True)
    (fold / "config.yaml").write_text(other.to_yaml())
    (fold / "metrics.json").write_text("{}")
    assert main(cli_command("cv", tmp_path, "cv", tiny_overrides)) == 2
    assert "fold_00 already holds a run of a different config" in error_line(capsys)


AGREE = textwrap.dedent(
    """
    import sys
    from mater_tf.config import load_config
    from mater_tf.errors import UserError
    from mater_tf.training import distribution, multi_worker_fit

    strategy = distribution.strategy_for(load_config("quickstart", ["train.distribution=multi_worker"]))
    multi_worker_fit.check_workers_agree(strategy, False, 3, "run")  # both at epoch 4: agreed
    try:
        multi_worker_fit.check_workers_agree(strategy, False, int(sys.argv[1]), "run")
    except UserError as error:
        print("refused:", error)
    """
)


@pytest.mark.slow
def test_workers_that_see_the_run_at_different_epochs_both_stop_with_one_line(tmp_path):
    # What a resume without shared storage looks like: the chief found a backup, the other did not.
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    workers = []
    for index, start_epoch in enumerate((5, 0)):
        env = _worker_env(addresses, index)
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", AGREE, str(start_epoch)], env=env, stdout=subprocess.PIPE, text=True
            )
        )
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert "this worker sees it at epoch 6" in outputs[0]
    assert "this worker sees it at epoch 1" in outputs[1]
    assert all("shared storage" in output and "--restart" in output for output in outputs)


@pytest.mark.slow
def test_a_worker_whose_port_is_taken_stops_with_one_line(tmp_path):
    # TensorFlow raises UnknownError ("Could not start gRPC server"), which went up as a traceback.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        addresses = [f"127.0.0.1:{taken.getsockname()[1]}", f"127.0.0.1:{free_ports(1)[0]}"]
        command = [
            sys.executable,
            "-m",
            "mater_tf.cli.main",
            "train",
            "--workdir",
            str(tmp_path),
            "--run",
            "r",
        ]
        command += ["--set", "train.distribution=multi_worker"]
        # As in a user's terminal: without TF_CPP_MIN_LOG_LEVEL (tox sets 2, which keeps the C++ ERROR lines).
        env = {k: v for k, v in _worker_env(addresses, 0).items() if k != "TF_CPP_MIN_LOG_LEVEL"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    finally:
        taken.close()
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("mater-tf")]
    assert len(lines) == 1 and addresses[0] in lines[0] and "Traceback" not in done.stderr
    # Nothing else: no line of TensorFlow's C++ runtime ("Could not start gRPC server", the
    # cuFFT/cuDNN/cuBLAS import banner) around it.
    assert done.stderr.strip().splitlines() == lines, done.stderr


@pytest.mark.parametrize(
    "text, seconds", [("", 600.0), ("3", 3.0), ("0", 0.0), ("2.5", 2.5), ("-1", None), ("soon", None)]
)
def test_the_cluster_timeout_comes_from_the_environment(text, seconds):
    environ = {"MATER_TF_CLUSTER_TIMEOUT": text}
    if seconds is None:
        with pytest.raises(UserError, match=rf"MATER_TF_CLUSTER_TIMEOUT='{text}' is not a number of seconds"):
            cluster_wait.cluster_timeout(environ)
    else:
        assert cluster_wait.cluster_timeout(environ) == seconds


def _lone_worker(tmp_path, timeout: str):
    """Worker 1 of a two-worker loopback cluster whose worker 0 never starts."""
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    command = [sys.executable, "-m", "mater_tf.cli.main", "train", "--workdir", str(tmp_path), "--run", "r"]
    command += ["--set", "train.distribution=multi_worker"]
    env = dict(_worker_env(addresses, 1), MATER_TF_CLUSTER_TIMEOUT=timeout)
    return addresses[0], command, env


@pytest.mark.slow
def test_a_worker_whose_peer_never_starts_gives_up_after_the_timeout_naming_it(tmp_path):
    # It printed nothing, and waited an hour in TensorFlow's native code (only kill -9 ended it).
    peer, command, env = _lone_worker(tmp_path, "3")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == (
        f"mater-tf train: error: train.distribution=multi_worker: worker 0 at {peer} did not start within 3 s; "
        "start the same command there with its TF_CONFIG (each worker its own task), or wait longer with "
        "MATER_TF_CLUSTER_TIMEOUT=SECONDS (0: without end)"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("signal_number, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_worker_waiting_for_its_peer_says_whom_and_ends_on_sigterm_and_ctrl_c(
    tmp_path, signal_number, code
):
    peer, command, env = _lone_worker(tmp_path, "0")  # no time limit: only the signal ends it
    process = subprocess.Popen(
        command,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        # A shell that starts pytest in the background hands its children SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    threading.Timer(300, process.kill).start()  # a worker deaf to signals (as it was) fails, not hangs
    seen = []
    for line in process.stderr:  # the line comes after 5 s of waiting
        seen.append(line)
        if "waiting for" in line:
            break
    assert seen and seen[-1].strip() == (
        f"waiting for the other workers of TF_CONFIG to start: worker 0 at {peer} (without end; Ctrl-C ends it)"
    ), seen
    process.send_signal(signal_number)
    rest = process.communicate(timeout=60)[1]
    assert process.returncode == code, rest
    assert (
        rest.strip()
        .splitlines()[-1]
        .startswith("mater-tf train: stopped by SIGTERM;" if code == 143 else "mater-tf train: interrupted;")
    )


def test_the_own_port_check_refuses_a_listened_port_and_passes_one_left_in_time_wait():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC's server sets it
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    environ = {TF_CONFIG: _worker_env([f"127.0.0.1:{port}"], 0)["TF_CONFIG"]}
    with pytest.raises(UserError, match=f"127.0.0.1:{port} \\(its port is in use\\)"):
        cluster_wait.check_own_port(environ)
    # A connection closed from the listening side first leaves that side's port in TIME_WAIT,
    # as an earlier run's worker does; TensorFlow's server (SO_REUSEADDR) can bind it, so must the check.
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()
    listener.close()
    client.recv(1)
    client.close()
    plain = socket.socket()
    with pytest.raises(OSError):  # the port is really in TIME_WAIT: a bind without SO_REUSEADDR fails
        plain.bind(("", port))
    plain.close()
    cluster_wait.check_own_port(environ)


@pytest.mark.parametrize(
    "level, shown",
    [
        ("3", "native\nafter\n"),
        ("2", "native\nafter\n"),
        ("1", "Started server with target x\nnative\nafter\n"),
    ],
)
def test_native_start_up_lines_are_dropped_and_other_native_lines_pass(level, shown, capfd, monkeypatch):
    from mater_tf.environment import quiet_native_stderr

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)
    with quiet_native_stderr(distribution.START_UP_LINES):
        # As C++ writes: to the file descriptor, not through sys.stderr.
        os.write(2, b"Started server with target x\n")
        os.write(2, b"native\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == shown
