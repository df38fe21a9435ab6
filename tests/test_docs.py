"""The docs cannot drift: every `mater-tf` command they show parses against the real CLI.

Commands are taken from the fenced shell blocks of README.md, docs/*.md and the research
records beside the experiments (line continuations joined, comments, environment assignments
and `&&` / `;` / `&` chains handled) and from inline code spans that hold a whole command. Each
is parsed by the parser `mater-tf` builds (`build_parser`), which runs nothing. Synopsis
blocks (```text) are checked option by option. The cheap commands run for real, and the worked
example runs end to end on the sample clips beside the checkout (slow).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mater_tf.cli.main import SUBCOMMANDS, build_parser, main
from mater_tf.config import ExperimentConfig

ROOT = Path(__file__).resolve().parents[1]
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}
SYNOPSIS_LANGUAGES = {"text"}
# Chain operators: a command ends at them.
CHAIN = {";", "&&", "&", "||", "|"}
# Shell words that may come before a command in a chain (`for ... do mater-tf ...`).
SHELL_PREFIXES = {"do", "then", "else", "time", "nice", "exec"}
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")  # `KEY=value mater-tf ...`
GLOBAL_OPTIONS = {"-v", "--verbose", "--version", "-h", "--help"}


@dataclass(frozen=True)
class Command:
    """A documented command: `kind` is "block" (a shell line: parsed whole), "synopsis" (a ```text
    line) or "inline" (a code span in prose); the last two are checked option by option."""

    path: Path
    line: int
    text: str
    kind: str = "block"

    def where(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"


def doc_files() -> list[Path]:
    """README.md, the guide in docs/, and the notes beside the experiments (not the runs; not
    docs/layout.md, which quotes the modules' docstrings, synopses such as `A|B` among them)."""
    experiments = [*ROOT.glob("experiments/*.md"), *ROOT.glob("experiments/*/*.md")]
    notes = sorted(path for path in experiments if "runs" not in path.relative_to(ROOT).parts)
    guide = sorted(path for path in (ROOT / "docs").glob("*.md") if path != LAYOUT_PAGE)
    return [ROOT / "README.md", *guide, *notes]


def _logical_lines(lines: list[str], first: int):
    """(line number, text) with backslash-newline continuations joined."""
    start, parts = None, []
    for number, line in enumerate(lines, first):
        start = number if start is None else start
        if line.rstrip().endswith("\\"):
            parts.append(line.rstrip()[:-1])
            continue
        parts.append(line)
        yield start, " ".join(part.strip() for part in parts)
        start, parts = None, []
    if parts:
        yield start, " ".join(part.strip() for part in parts)


def _split_words(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def commands_in_shell_line(text: str) -> list[list[str]]:
    """The argv of every `mater-tf` command of one shell line (a chain of commands)."""
    found, segment = [], []
    for word in [*_split_words(text), ";"]:
        if word not in CHAIN:
            segment.append(word)
            continue
        while segment and (ASSIGNMENT.fullmatch(segment[0]) or segment[0] in SHELL_PREFIXES):
            segment = segment[1:]
        if segment and segment[0] == "mater-tf":
            found.append(segment)
        segment = []
    return found


def extract_commands(path: Path) -> list[Command]:
    """Every `mater-tf` command shown in a Markdown file, with the line it starts on."""
    lines = path.read_text(encoding="utf-8").split("\n")
    commands, prose, index = [], list(lines), 0
    while index < len(lines):
        fence = re.match(r"\s*```(\w*)\s*$", lines[index])
        if not fence:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not re.match(r"\s*```\s*$", lines[end]):
            end += 1
        language, body = fence.group(1).lower(), lines[index + 1 : end]
        if language in SHELL_LANGUAGES:
            for number, text in _logical_lines(body, index + 2):
                if "mater-tf" in text:
                    commands += [
                        Command(path, number, shlex.join(argv)) for argv in commands_in_shell_line(text)
                    ]
        elif language in SYNOPSIS_LANGUAGES:
            commands += [
                Command(path, number, text, "synopsis")
                for number, text in enumerate(body, index + 2)
                if text.startswith("mater-tf ")
            ]
        prose[index : end + 1] = [""] * (end + 1 - index)
        index = end + 1
    text = "\n".join(prose)
    for match in re.finditer(r"`(mater-tf [^`]*)`", text):
        line = text.count("\n", 0, match.start()) + 1
        commands.append(Command(path, line, " ".join(match.group(1).split()), "inline"))
    return commands


def _subparsers(parser) -> dict | None:
    """The subcommands of a parser by name, or None where it has none."""
    actions = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return actions[0].choices if actions else None


def _option_error(command: Command, parser) -> str | None:
    """A synopsis or a prose span: the command exists and names only options it has (a command
    with subcommands, `weights convert-vggish|convert-vggm`, is followed down)."""
    words = command.text.split() if command.kind == "synopsis" else _split_words(command.text)
    words = words[1:]
    while words and words[0] in GLOBAL_OPTIONS:
        words = words[1:]
    parsers, name = [parser], "mater-tf"
    while words and _subparsers(parsers[0]) is not None:
        if words[0].isupper():  # `mater-tf -v COMMAND`: a placeholder for any command
            return None
        choices = _subparsers(parsers[0])
        names = words[0].split("|")
        if any(verb not in choices for verb in names):
            return f"unknown command of {name}: {words[0]!r}"
        parsers, name, words = [choices[verb] for verb in names], f"{name} {words[0]}", words[1:]
    known = {option for each in parsers for option in each._option_string_actions}
    options = re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", " ".join(word.split("=")[0] for word in words))
    unknown = [option for option in options if option not in known]
    return f"unknown options of {name}: {unknown}" if unknown else None


def _parse(command: Command, parser) -> str | None:
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(shlex.split(command.text)[1:])
    except SystemExit as exit:
        if exit.code not in (0, None):
            return stderr.getvalue().strip().splitlines()[-1]
    return None


def parse_error(command: Command, parser=None) -> str | None:
    """Why a documented command does not parse, or None when it does. A prose span may be part of
    a command (`mater-tf prepare --keep-log-mel`, `mater-tf predict --model` and its value in the
    prose) or hold placeholders (`--detect-every K`): where it does not parse for that reason, its
    options are checked instead."""
    parser = parser or build_parser()
    if command.kind == "synopsis":
        return _option_error(command, parser)
    error = _parse(command, parser)
    if error and command.kind == "inline":
        placeholder = any(word.isupper() for word in re.findall(r"\b[A-Z_]+\b", command.text))
        if "are required" in error or "expected one argument" in error or placeholder:
            return _option_error(command, parser)
    return error


def broken_commands(paths) -> list[str]:
    parser = build_parser()
    problems = []
    for path in paths:
        for command in extract_commands(path):
            error = parse_error(command, parser)
            if error:
                problems.append(f"{command.where()}: {command.text}\n    {error}")
    return problems


def extract_yaml_commands(path: Path) -> list[Command]:
    """The commands of an experiment YAML's header: comment lines that begin with `mater-tf`
    (after an optional `Label:`), continued with a backslash on the next comment lines."""
    body = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        text = re.sub(r"^#\s*(\w+:\s+)?", "", line) if line.startswith("#") else ""
        continued = bool(body) and body[-1].rstrip().endswith("\\")
        body.append(text if continued or text.startswith("mater-tf ") else "")
    return [
        Command(path, number, shlex.join(argv))
        for number, text in _logical_lines(body, 1)
        if text.startswith("mater-tf ")
        for argv in commands_in_shell_line(text)
    ]


def test_every_command_in_the_experiment_headers_parses():
    paths = [
        path
        for path in sorted(ROOT.glob("experiments/**/*.yaml"))
        if "runs" not in path.relative_to(ROOT).parts
    ]
    commands = [command for path in paths for command in extract_yaml_commands(path)]
    assert len(commands) > 40, len(commands)
    parser = build_parser()
    problems = [f"{c.where()}: {c.text}\n    {error}" for c in commands if (error := parse_error(c, parser))]
    assert not problems, "commands in experiment headers that mater-tf does not parse:\n" + "\n".join(
        problems
    )


def test_every_command_in_the_docs_parses():
    commands = [command for path in doc_files() for command in extract_commands(path)]
    verbs = {command.text.split()[1] for command in commands}
    # The docs show every command, so a parser change that breaks one cannot go unseen.
    assert set(SUBCOMMANDS) <= verbs, set(SUBCOMMANDS) - verbs
    assert sum(command.kind == "block" for command in commands) > 25
    problems = broken_commands(doc_files())
    assert not problems, "commands in the docs that mater-tf does not parse:\n" + "\n".join(problems)


def test_the_set_up_commands_are_kept_verbatim():
    readme = (ROOT / "README.md").read_text()
    assert "\npython3 -m venv .venv && . .venv/bin/activate && pip install . && mater-tf train\n" in readme
    assert '\npython3 -m pip install "tox>=4,<5" && python3 -m tox\n' in readme
    assert 'python3 -m pip install "tox>=4,<5" && python3 -m tox' in (ROOT / ".ci" / "run").read_text()


def test_a_broken_command_is_named_with_its_file_and_line(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n\n```bash\nmater-tf prepare --corpus ravdess --root R/ --out r \\\n"
        "    --windws 8          # a typo\n"
        'KEY=1 mater-tf train --set a.b=c && mater-tf cv --experiment "my file.yaml"\n'
        "mater-tf predikt clip.mp4\n```\n\n"
        "Inline: `mater-tf train --epochs 3`, and `mater-tf evaluate --run DIR`.\n\n"
        "```text\nmater-tf export   --run DIR --out BASE [--versoin N]\n```\n"
    )
    commands = extract_commands(page)
    assert [(command.line, command.kind, command.text) for command in commands] == [
        (4, "block", "mater-tf prepare --corpus ravdess --root R/ --out r --windws 8"),
        (6, "block", "mater-tf train --set a.b=c"),
        (6, "block", "mater-tf cv --experiment 'my file.yaml'"),
        (7, "block", "mater-tf predikt clip.mp4"),
        (13, "synopsis", "mater-tf export   --run DIR --out BASE [--versoin N]"),
        (10, "inline", "mater-tf train --epochs 3"),
        (10, "inline", "mater-tf evaluate --run DIR"),
    ]
    problems = broken_commands([page])
    assert [problem.split(": mater-tf")[0] for problem in problems] == [
        f"{page}:4",
        f"{page}:7",
        f"{page}:13",
        f"{page}:10",
    ], problems
    assert "--windws" in problems[0] and "predikt" in problems[1]
    assert "--versoin" in problems[2] and "--epochs" in problems[3]


def test_the_help_and_the_models_commands_run(capsys):
    for verb in SUBCOMMANDS:
        with pytest.raises(SystemExit) as exit:
            main([verb, "--help"])
        assert exit.value.code == 0
        assert f"mater-tf {verb}" in capsys.readouterr().out
    # `mater-tf models` and `mater-tf models ravdess-voice`, as the README shows them.
    assert main(["models"]) == 0
    assert "ravdess-voice" in capsys.readouterr().out
    assert main(["models", "ravdess-voice"]) == 0
    assert "CC BY-NC-SA 4.0" in capsys.readouterr().out


def worked_example_commands() -> list[list[str]]:
    page = ROOT / "docs" / "worked_example.md"
    return [shlex.split(command.text) for command in extract_commands(page) if command.kind == "block"]


def test_the_readme_tour_is_the_worked_example_s_first_part():
    readme = [
        shlex.split(command.text)
        for command in extract_commands(ROOT / "README.md")
        if command.kind == "block"
    ]
    tour = [argv for argv in readme if "ravdess-sample" in " ".join(argv)]
    assert [argv[1] for argv in tour] == ["prepare", "train", "predict"]
    assert tour == worked_example_commands()[:3]


@pytest.mark.slow
def test_the_worked_example_runs_on_the_samples(shared_dir, tmp_path, monkeypatch):
    """The worked example's commands, as the page shows them, from a checkout-like folder whose
    ../shared is the sample data: each exits 0 and leaves what the page says it leaves."""
    if not (shared_dir / "weights" / "fer2013_mini_xception.hdf5").is_file():
        pytest.skip("the FER2013 face model is not in ../shared/weights")
    checkout = tmp_path / "checkout"
    (checkout / "experiments").mkdir(parents=True)
    shutil.copy(ROOT / "experiments" / "small_corpus.yaml", checkout / "experiments")
    (tmp_path / "shared").symlink_to(shared_dir)
    monkeypatch.chdir(checkout)
    commands = worked_example_commands()
    assert [argv[1] for argv in commands] == ["prepare", "train", "predict"] * 2, commands
    for argv in commands:
        assert main(argv[1:]) == 0, shlex.join(argv)
    for corpus in ("ravdess", "cremad"):
        assert (checkout / "records" / f"{corpus}-sample" / "manifest.json").is_file()
        assert (
            checkout / "experiments" / "runs" / "small_corpus" / f"{corpus}-sample" / "metrics.json"
        ).is_file()
    assert (checkout / "predictions" / "score.json").is_file()
    assert (checkout / "predictions" / "summary.csv").is_file()
    clip = checkout / "predictions" / "cremad-sample" / "1001_DFA_ANG_XX"
    assert all(
        (clip.parent / f"{clip.name}{suffix}").is_file() for suffix in (".json", ".csv", ".png", ".html")
    )


# The configuration reference: every setting's key, default and doc, drawn from the dataclasses
# (`python tests/test_docs.py --write-config-reference` rewrites it after a change).
CONFIG_PAGE = ROOT / "docs" / "configuration.md"
REFERENCE_START = "<!-- every setting: generated from mater_tf/config by tests/test_docs.py -->"
REFERENCE_END = "<!-- end of the generated settings -->"


def _setting_rows(section, prefix: str):
    sections = []
    for field in dataclasses.fields(section):
        value = getattr(section, field.name)
        if dataclasses.is_dataclass(value):
            sections.append((value, f"{prefix}{field.name}."))
            continue
        default = "`" + (repr(value) if isinstance(value, str) else str(value)) + "`"
        doc = " ".join(field.metadata.get("doc", "").split()).replace("|", "\\|")
        yield f"| `{prefix}{field.name}` | {default} | {doc} |"
    for value, nested in sections:
        yield from _setting_rows(value, nested)


def config_reference() -> str:
    """The generated settings tables, one per section, in the order of the config."""
    config, parts = ExperimentConfig(), []
    top = [
        field
        for field in dataclasses.fields(config)
        if not dataclasses.is_dataclass(getattr(config, field.name))
    ]
    groups = [("(top level)", config, "", top)]
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            groups.append((f"`{field.name}`", value, f"{field.name}.", None))
    for title, section, prefix, only in groups:
        rows = list(_setting_rows(section, prefix))
        if only is not None:
            names = {f"`{prefix}{field.name}`" for field in only}
            rows = [row for row in rows if row.split(" | ")[0][2:] in names]
        parts.append(
            f"### {title}\n\n| key | default | what it sets |\n| --- | --- | --- |\n" + "\n".join(rows)
        )
    return "\n\n".join(parts)


def _reference_on_the_page() -> tuple[str, str, str]:
    text = CONFIG_PAGE.read_text(encoding="utf-8")
    head, rest = text.split(REFERENCE_START + "\n")
    body, tail = rest.split(REFERENCE_END)
    return head, body, tail


def test_the_configuration_reference_lists_every_setting():
    _, body, _ = _reference_on_the_page()
    assert body.strip() == config_reference(), "run: python tests/test_docs.py --write-config-reference"


# The layout page: every source file with the first line of its docstring, one line each
# (`python tests/test_docs.py --write-layout` rewrites it after files move).
LAYOUT_PAGE = ROOT / "docs" / "layout.md"
LAYOUT_START = "<!-- every file: generated from the module docstrings by tests/test_docs.py -->"
LAYOUT_END = "<!-- end of the generated layout -->"


def layout_reference() -> str:
    """Per package folder of mater_tf/ and pipelines/, its files and what each holds (the first
    line of the module's docstring; a file without one fails the test that reads this)."""
    import ast

    groups: dict[str, list[str]] = {}
    for path in sorted([*(ROOT / "mater_tf").rglob("*.py"), *(ROOT / "pipelines").rglob("*.py")]):
        relative = path.relative_to(ROOT)
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        first = doc.strip().splitlines()[0] if doc.strip() else "(no docstring)"
        groups.setdefault(relative.parent.as_posix(), []).append(f"- `{relative.name}`: {first}")
    return "\n\n".join(f"### `{folder}/`\n\n" + "\n".join(rows) for folder, rows in groups.items())


def _layout_on_the_page() -> tuple[str, str, str]:
    text = LAYOUT_PAGE.read_text(encoding="utf-8")
    head, rest = text.split(LAYOUT_START + "\n")
    body, tail = rest.split(LAYOUT_END)
    return head, body, tail


def test_the_layout_page_lists_every_file_with_what_it_holds():
    _, body, _ = _layout_on_the_page()
    assert "(no docstring)" not in layout_reference(), "every module says in its docstring what it holds"
    assert body.strip() == layout_reference(), "run: python tests/test_docs.py --write-layout"


if __name__ == "__main__" and sys.argv[1:] == ["--write-layout"]:
    head, _, tail = _layout_on_the_page()
    LAYOUT_PAGE.write_text(
        f"{head}{LAYOUT_START}\n\n{layout_reference()}\n\n{LAYOUT_END}{tail}", encoding="utf-8"
    )
    print(f"wrote {LAYOUT_PAGE.relative_to(ROOT)}")


if __name__ == "__main__" and sys.argv[1:] == ["--write-config-reference"]:
    head, _, tail = _reference_on_the_page()
    CONFIG_PAGE.write_text(
        f"{head}{REFERENCE_START}\n\n{config_reference()}\n\n{REFERENCE_END}{tail}", encoding="utf-8"
    )
    print(f"wrote {CONFIG_PAGE.relative_to(ROOT)}")
