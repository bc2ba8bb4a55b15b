"""Bad and everyday input, one file per case: read correctly, refused with a clear InputError naming the file
(and row/column where it applies), or the offending rows rejected with a reason. Every input row is accounted for:
input_rows = cvs + rejected + duplicates + beyond_limit. docs/bad-input.md has the same table in words."""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_headcount.config import IngestSettings
from ml_headcount.corpus.ingest import ingest
from ml_headcount.errors import InputError
from tests.conftest import REPO

ML = [
    "Trained transformer models for machine translation research at a university lab.",
    "Published papers on reinforcement learning and deep neural network theory.",
]
OTHER = [
    "Managed enterprise client accounts and grew recurring revenue in retail.",
    "Organised logistics for a regional warehouse team and negotiated with suppliers.",
]
ROWS = [(ML[0], "1"), (OTHER[0], "0"), (ML[1], "1"), (OTHER[1], "0")]
# distinct rows, as many as a file needs to show that one bad row costs only itself
MANY = [(f"{text} Team {team}.", label) for team in ("Alpha", "Beta", "Gamma", "Delta") for text, label in ROWS]
NUMBERED = [(f"{text} (profile {i:05d})", label) for i in range(500) for text, label in ROWS]  # 2,000 rows, ~150 KB


def csv_text(rows=ROWS, sep=",", header=("cv_text", "category")) -> str:
    return pd.DataFrame(rows, columns=list(header)).to_csv(index=False, sep=sep)


def xlsx(path: Path, sheets: dict[str, list[tuple]]) -> None:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    book.save(path)


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@dataclass
class Case:
    name: str  # the file's name, which every error message must contain
    write: Callable[[Path], None]  # writes the case at this path
    cvs: int | None = None  # read: this many CVs
    error: str | None = None  # refused: InputError matching this
    rejected: dict[int, str] = field(default_factory=dict)  # source row -> reason prefix
    settings: dict = field(default_factory=dict)
    check: Callable | None = None  # anything else about the result
    reading: bool = True  # refused: by reading the file (so `apply` and `estimate` refuse it too), not for its CVs


def bytes_of(data: bytes | str):
    return lambda path: path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


CASES = {
    # item 5 of issue 9: everyday files that were refused or misread
    "json array of records": Case(
        "cvs.json", bytes_of(json.dumps([{"profile_summary": t, "category": c} for t, c in ROWS])), cvs=4
    ),
    "gzip csv": Case("cvs.csv.gz", bytes_of(gzip.compress(csv_text().encode())), cvs=4),
    "zip csv": Case("cvs.zip", bytes_of(zipped({"export/cvs.csv": csv_text().encode()})), cvs=4),
    "bz2 tsv": Case("cvs.tsv.bz2", bytes_of(bz2.compress(csv_text(sep="\t").encode())), cvs=4),
    "tsv named .csv": Case("tabs.csv", bytes_of(csv_text(sep="\t")), cvs=4),
    "utf-16 with BOM (Excel Unicode text)": Case(
        "unicode.txt", bytes_of(codecs.BOM_UTF16_LE + csv_text(sep="\t").encode("utf-16-le")), cvs=4
    ),
    "jsonl with one broken line": Case(
        "cvs.jsonl",
        bytes_of(
            "\n".join(
                [json.dumps({"cv_text": ML[0], "category": 1}), '{"cv_text": "broken, "category": 0}']
                + [json.dumps({"cv_text": t, "category": c}) for t, c in ROWS[1:]]
            )
            + "\n"
        ),
        cvs=4,
        rejected={2: "invalid JSON"},
    ),
    "csv row with an unquoted extra comma": Case(
        "comma.csv",
        bytes_of(
            f"cv_text,category\n{ML[0]},1\nLed sales, and accounts for a bank branch team,0\n"
            + "".join(f'"{t}",{c}\n' for t, c in ROWS[1:])
        ),
        cvs=4,
        rejected={2: "row has 3 fields, the header 2 (an unquoted comma in a value?)"},
        check=lambda r: r.text_column == "cv_text" and r.cvs["text"].iloc[0] == ML[0].lower(),
    ),
    "cp1252 accents": Case(
        "ansi.csv",
        bytes_of(
            csv_text([("Café owner, naïve Bayes hobbyist, résumé in machine learning", "1")] + ROWS[1:]).encode(
                "cp1252"
            )
        ),
        cvs=4,
        check=lambda r: (
            "café" in r.cvs["text"].iloc[0]
            and "naïve" in r.cvs["text"].iloc[0]
            and r.repaired_encoding >= 1
            and r.encoding == "cp1252"
        ),
    ),
    "xlsx with two data sheets": Case(
        "two.xlsx",
        lambda p: xlsx(p, {"A": [("cv_text", "category"), *ROWS[:2]], "B": [("cv_text", "category"), *ROWS[2:]]}),
        cvs=4,
        check=lambda r: r.sheets == {"A": 2, "B": 2},
    ),
    "xlsx with a notes sheet": Case(
        "notes.xlsx",
        lambda p: xlsx(p, {"CVs": [("cv_text", "category"), *ROWS], "Notes": [("note",), ("exported by HR",)]}),
        cvs=4,
        check=lambda r: r.sheets == {"CVs": 4, "Notes": -1},
    ),
    "limit counts the rows beyond it": Case(
        "limited.csv", bytes_of(csv_text()), cvs=2, settings={"limit": 2}, check=lambda r: r.beyond_limit == 2
    ),
    "directory as input": Case("folder", lambda p: p.mkdir(), error="is a directory"),
    # item 7: limits
    "huge row": Case(
        "huge.csv",
        bytes_of(csv_text([("machine learning " * 20_000, "1")] + ROWS)),
        cvs=4,
        rejected={1: "text longer than 100000 characters"},
    ),
    "xlsx zip bomb": Case(
        "bomb.xlsx",
        lambda p: xlsx(p, {"CVs": [("cv_text", "category"), *ROWS * 50]}),
        settings={"max_xlsx_bytes": 20_000},
        error="uncompresses to .* over ingest.max_xlsx_bytes",
    ),
    # the rest of the list, and more
    "empty file": Case("empty.csv", bytes_of(b""), error="is empty"),
    "header only": Case("header.csv", bytes_of("cv_text,category\n"), error="no data rows", reading=False),
    "binary garbage": Case("garbage.csv", bytes_of(bytes(range(256)) * 40), error="binary content"),
    "non-existent path": Case("nowhere.csv", lambda p: None, error="file not found"),
    "single category": Case(
        "one.csv",
        bytes_of(csv_text([(t, "1") for t, _ in ROWS])),
        error="column 'category' yields 1 usable categories",
        reading=False,
    ),
    "numeric-only text": Case(
        "numbers.csv",
        bytes_of(csv_text([("12345 67890 2024", "1")] + ROWS)),
        cvs=4,
        rejected={1: "no letters after cleaning"},
    ),
    "NUL bytes in text": Case(
        "nul.csv",
        bytes_of(csv_text([(ML[0].replace(" ", "\x00 ", 2), "1")] + ROWS[1:])),
        cvs=4,
        check=lambda r: "\x00" not in "".join(r.cvs["text"]),
    ),
    "utf-8 BOM": Case(
        "bom.csv", bytes_of(codecs.BOM_UTF8 + csv_text().encode()), cvs=4, check=lambda r: r.text_column == "cv_text"
    ),
    "utf-16 BE BOM csv": Case("be.csv", bytes_of(codecs.BOM_UTF16_BE + csv_text().encode("utf-16-be")), cvs=4),
    "corrupt gzip": Case("cut.csv.gz", bytes_of(gzip.compress(csv_text().encode())[:40]), error="cannot be read"),
    "old .xls": Case("old.xls", bytes_of(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500)), error="Excel 97-2003"),
    "zip with two tables": Case(
        "two.zip",
        bytes_of(zipped({"a.csv": csv_text().encode(), "b.csv": csv_text().encode()})),
        error="must hold exactly one table",
    ),
    "truncated JSON array": Case(
        "cut.json", bytes_of('[{"cv_text": "x", "category": 1}, {"cv_'), error="invalid JSON at line 1"
    ),
    "no label column": Case(
        "nolabel.csv", bytes_of(csv_text(header=("cv_text", "name"))), error="no label column found", reading=False
    ),
    "semicolons (European Excel)": Case("semi.csv", bytes_of(csv_text(sep=";")), cvs=4),
    "trailing delimiters": Case(
        "trailing.csv", bytes_of("".join(line + ",,\n" for line in csv_text().splitlines())), cvs=4
    ),
    "quoted multi-line cells": Case(
        "multiline.csv",
        bytes_of(csv_text([(ML[0].replace(" at ", "\nat "), "1"), ("", "0")] + ROWS[1:])),
        cvs=4,
        rejected={2: "empty text"},
    ),
    "empty parquet": Case(
        "empty.parquet",
        lambda p: pd.DataFrame({"cv_text": [], "category": []}).to_parquet(p),
        error="no data rows",
        reading=False,
    ),
    "truncated parquet": Case(
        "cut.parquet", lambda p: p.write_bytes(_parquet_bytes()[:-30]), error="cannot be read as parquet"
    ),
    "labels all missing": Case(
        "nolabels.csv",
        bytes_of(csv_text([(t, "") for t, _ in ROWS])),
        error="yields 0 usable categories",
        reading=False,
    ),
    "duplicates and a conflicting label": Case(
        "dups.csv",
        bytes_of(csv_text(ROWS + [(ML[0].upper(), "0"), (OTHER[0] + "  ", "0")])),
        cvs=4,
        rejected={5: "duplicate of row 1 with a different label ('1' kept)", 6: "duplicate of row 2"},
        check=lambda r: r.duplicates == 2,
    ),
    # issue 20: inputs that crashed, or cost more than their row, or more memory than their size
    "JSON array nested 200,000 deep": Case(
        "deep.json", bytes_of("[" * 200_000 + "]" * 200_000), error="nested too deeply"
    ),
    "a JSONL line nested 200,000 deep": Case(
        "deep.jsonl",
        bytes_of(
            "\n".join(
                [json.dumps({"cv_text": t, "category": c}) for t, c in ROWS[:2]]
                + ["[" * 200_000]
                + [json.dumps({"cv_text": t, "category": c}) for t, c in ROWS[2:]]
            )
            + "\n"
        ),
        cvs=4,
        rejected={3: "invalid JSON: nested too deeply"},
    ),
    "one huge cell in row 13": Case(
        "hugecell.csv",
        bytes_of(csv_text(MANY[:12] + [("machine learning " * 80_000, "1")] + MANY[12:])),
        cvs=len(MANY),
        rejected={13: "a field longer than 400,000 characters"},
    ),
    "a huge quoted cell over several lines": Case(
        "hugelines.csv",
        bytes_of(csv_text(MANY[:3] + [('deep learning, "quoted"\n' * 50_000, "1")] + MANY[3:])),
        cvs=len(MANY),
        rejected={4: "a field longer than"},
        check=lambda r: r.cvs["source_row"].tolist() == [1, 2, 3, *range(5, len(MANY) + 2)],
    ),
    "a header wider than ingest.max_columns": Case(
        "wide.csv",
        bytes_of(
            ",".join(["cv_text", "category", *(f"c{i}" for i in range(5000))]) + "\n" + csv_text().split("\n", 1)[1]
        ),
        error="the header has 5,002 columns, over ingest.max_columns",
    ),
    "JSONL records wider than ingest.max_columns together": Case(
        "wide.jsonl",
        bytes_of(
            "\n".join(
                json.dumps({"cv_text": t, "category": c, **{f"k{i}_{j}": 1 for j in range(400)}})
                for i, (t, c) in enumerate(ROWS)
            )
            + "\n"
        ),
        error="its records together have 1,202 columns",
    ),
    "gzip Parquet decompressing past ingest.max_whole_file_bytes": Case(
        "big.parquet.gz",
        lambda p: p.write_bytes(gzip.compress(_parquet_bytes(NUMBERED))),
        settings={"max_whole_file_bytes": 10_000},
        error="the Parquet inside decompresses to more than 10,000 bytes",
    ),
    "zip holding an XLSX past ingest.max_whole_file_bytes": Case(
        "book.zip",
        lambda p: p.write_bytes(zipped({"book.xlsx": _xlsx_bytes(NUMBERED)})),
        settings={"max_whole_file_bytes": 10_000},
        error="the XLSX inside decompresses to more than 10,000 bytes",
    ),
    "JSON array past ingest.max_whole_file_bytes": Case(
        "big.json",
        bytes_of(json.dumps([{"cv_text": t, "category": c} for t, c in ROWS * 100])),
        settings={"max_whole_file_bytes": 10_000},
        error="a JSON array is read whole, and this one is over 10,000 characters",
    ),
    "a JSON line that is not an object": Case(
        "scalars.jsonl",
        bytes_of("\n".join([json.dumps({"cv_text": t, "category": c}) for t, c in ROWS] + ["42"]) + "\n"),
        cvs=4,
        rejected={5: "invalid JSON line: a int"},
    ),
    # issue 32, item 12: a repeated column was renamed `x.1` and dropped silently
    "a repeated header": Case(
        "twice.csv",
        bytes_of(csv_text(header=("cv_text", "category")).replace("cv_text,category", "cv_text,category,cv_text", 1)),
        error=r"row 1, column 'cv_text': the header names it twice \(columns 1 and 3\)",
    ),
    "a parquet with a repeated column": Case(
        "twice.parquet",
        lambda p: pq.write_table(pa.table([[ML[0]], ["1"], ["0"]], names=["cv_text", "category", "category"]), p),
        error=r"row 1, column 'category': the header names it twice \(columns 2 and 3\)",
    ),
}


def _parquet_bytes(rows=ROWS) -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame(rows, columns=["cv_text", "category"]).to_parquet(buffer)
    return buffer.getvalue()


def _xlsx_bytes(rows) -> bytes:
    buffer = io.BytesIO()
    book = openpyxl.Workbook()
    book.active.append(["cv_text", "category"])
    for row in rows:
        book.active.append(list(row))
    book.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_domain(case: Case, tmp_path):
    path = tmp_path / case.name
    case.write(path)
    settings = IngestSettings(**case.settings)
    if case.error:
        with pytest.raises(InputError) as raised:
            ingest(str(path), settings)
        message = str(raised.value)
        assert case.name in message and "\n" not in message
        assert re.search(case.error, message), message
        return
    result = ingest(str(path), settings)
    summary = result.summary()
    assert (
        summary["input_rows"] == summary["cvs"] + summary["rejected"] + summary["duplicates"] + summary["beyond_limit"]
    )
    assert len(result.cvs) == case.cvs, result.rejected.to_dict("records")
    reasons = dict(zip(result.rejected["source_row"], result.rejected["reason"]))
    assert set(reasons) == set(case.rejected), reasons
    for row, reason in case.rejected.items():
        assert reasons[row].startswith(reason), reasons[row]
        assert result.rejected.set_index("source_row").loc[row, "raw_text"] != "" or reason == "empty text"
    assert set(result.cvs["category"]) == {"1", "0"}
    assert case.check is None or case.check(result)


def test_the_table_has_at_least_25_files():
    assert len(CASES) >= 25


def test_cp1252_bytes_after_the_sniffed_sample_are_decoded_as_cp1252_too(tmp_path):
    filler = [(f"{ML[0]} number {i} " + "x" * 200, "1") for i in range(400)]  # > the 64 KiB sample, all UTF-8
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        csv_text(filler).encode() + "Café manager for a retail chain and its accounts,0\n".encode("cp1252")
    )
    result = ingest(str(path), IngestSettings())
    assert result.cvs["text"].iloc[-1].startswith("café manager")


ERRORS = {case_id: case for case_id, case in CASES.items() if case.error}


@pytest.fixture
def prefect_logs(prefect_harness) -> io.StringIO:
    """Everything Prefect logs during the test, formatted with any traceback it carries.

    Prefect's logging is set up here, before the test's output capture starts: its
    console handler keeps the stream it was set up with."""
    import logging

    from prefect.logging.configuration import PROCESS_LOGGING_CONFIG, setup_logging

    if not PROCESS_LOGGING_CONFIG:
        setup_logging()
    text = io.StringIO()
    recorder = logging.StreamHandler(text)
    recorder.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    loggers = [
        logging.getLogger(name) for name in ("prefect", "prefect.flow_runs", "prefect.task_runs", "prefect.engine")
    ]
    for logger in loggers:
        logger.addHandler(recorder)
    yield text
    for logger in loggers:
        logger.removeHandler(recorder)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """What `apply` reads of a finished run (its manifest's settings and its lists), without running the model."""
    from ml_headcount.config import Settings

    run = tmp_path_factory.mktemp("finished") / "artifacts" / "runs" / "done"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"run_id": "done", "parameters": Settings().model_dump(mode="json")}))
    (run / "keyword_lists.json").write_text(
        json.dumps({"1": {"broad": {"keywords": ["machine translation", "neural network"]}}})
    )
    return run


def command_line(command: str, path: Path, tmp_path: Path, finished_run: Path) -> list[str]:
    """The case's file as `run` reads it, as `apply` reads it (the table to match), or as `estimate` reads it (the
    validation table)."""
    if command == "run":
        return ["run", str(path), "--storage-url", str(tmp_path / "artifacts"), "--run-id", "bad-input"]
    if command == "apply":
        return ["apply", str(finished_run), str(path), "--output", str(tmp_path / "matches.parquet")]
    return [
        "estimate",
        "--validation",
        str(path),
        "--population",
        str(REPO / "examples" / "headcount_population.csv"),
        "--storage-url",
        str(tmp_path / "artifacts"),
        "--run-id",
        "bad-input",
    ]


def run_cli(argv: list[str], case_settings: dict, tmp_path: Path, prefect_logs, capsys) -> tuple[int, str, list[str]]:
    from flows.cli import main

    overrides = [f"ingest:\n  {k}: {v}\n" for k, v in case_settings.items()]
    if overrides:
        (tmp_path / "settings.yaml").write_text("".join(overrides))
        argv = [*argv, "--config", str(tmp_path / "settings.yaml")]
    code = main(argv)
    out, err = capsys.readouterr()
    output = out + err + prefect_logs.getvalue()
    return code, output, [line for line in output.splitlines() if line.startswith("ml-headcount: error:")]


@pytest.mark.parametrize("command", ["run", "apply", "estimate"])
@pytest.mark.parametrize("case", ERRORS.values(), ids=ERRORS.keys())
def test_cli(case: Case, command: str, finished_run, tmp_path, prefect_logs, capsys):
    """The same files through `ml-headcount run`, `apply` and `estimate`: exit code 2, one line naming the file, no
    traceback anywhere. A file refused for its CVs (not for its bytes) is one `apply` matches as it is."""
    path = tmp_path / case.name
    case.write(path)

    code, output, errors = run_cli(
        command_line(command, path, tmp_path, finished_run), case.settings, tmp_path, prefect_logs, capsys
    )

    # refused before any flow where a header tells (most cases), else by the flow's own reading: either way one line
    assert "Traceback" not in output and "Retry" not in output
    if path.is_dir() or not path.exists():
        assert "prefect.flow_runs" not in output
    if command == "apply" and not case.reading:
        assert code == 0 and not errors, errors
        assert "prefect.flow_runs" in output, "Prefect's own log lines are captured (and so checked)"
        return
    assert code == 2
    assert len(errors) == 1 and case.name in errors[0], errors
    # a CV table as `estimate`'s validation table lacks the population's annotator columns: refused for those
    # where its header reads (only the first JSONL record is read before the flow), else for the case's own fault
    expected = case.error if command != "estimate" else f"{case.error}|annotator column 'llm_a' is not a column"
    if command == "run" or case.reading:
        assert re.search(expected, errors[0]), errors


@pytest.mark.parametrize(
    "argv, named",
    [
        # a run's location is accepted (issue 21) and names that store: refused there in one line, nothing written
        (["estimate", "--keywords", "../../other/runs/x"], "other/runs/x: no complete run there"),
        (["apply", "{run}", "{csv}", "--output", "{tmp}"], "is a directory"),
        (
            ["apply", "{run}", "{csv}", "--output", "{tmp}/dataset.parquet"],
            "is a directory",
        ),  # a Spark-style dataset folder
        (["apply", "../x", "{csv}"], "invalid run id '../x'"),
    ],
    ids=["estimate-keywords-path", "apply-output-directory", "apply-output-parquet-directory", "apply-run-path"],
)
def test_cli_refuses_paths_where_names_go(argv, named, finished_run, tmp_path, prefect_logs, capsys):
    path = tmp_path / "cvs.csv"
    path.write_text(csv_text())
    (tmp_path / "dataset.parquet").mkdir()
    argv = [a.format(run=finished_run, csv=path, tmp=tmp_path) for a in argv]
    if argv[0] == "estimate":
        argv += [
            "--validation",
            str(REPO / "examples" / "headcount_validation.csv"),
            "--population",
            str(REPO / "examples" / "headcount_population.csv"),
            "--storage-url",
            str(tmp_path / "store"),
        ]
    else:
        argv += ["--storage-url", str(finished_run.parents[1])]
    code, output, errors = run_cli(argv, {}, tmp_path, prefect_logs, capsys)
    assert code == 2 and len(errors) == 1 and named in errors[0] and "Traceback" not in output, output[-3000:]


@pytest.mark.parametrize("run_id", ["..", "a/b"])
def test_cli_refuses_unsafe_run_ids(run_id, tmp_path, prefect_logs, capsys):
    from flows.cli import main

    path = tmp_path / "cvs.csv"
    path.write_text(csv_text())
    code = main(["run", str(path), "--storage-url", str(tmp_path / "artifacts"), "--run-id", run_id])
    out, err = capsys.readouterr()
    err += prefect_logs.getvalue()
    assert code == 2 and f"ml-headcount: error: invalid run id {run_id!r}" in err and "Traceback" not in out + err
    assert not (tmp_path / "artifacts" / "runs").exists() or not any((tmp_path / "artifacts" / "runs").iterdir())
