"""`qa`: the command line. Thin: parses options, calls qa_pipeline, prints progress and a summary."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from qa_pipeline.choices import Decoder, Device, EngineKind, Role
from qa_pipeline.errors import QaError, Stopped

app = typer.Typer(
    name="qa",
    help="Score recorded customer-service calls against a written service standard, offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rubric_app = typer.Typer(help="Work with rubric files.", no_args_is_help=True)
app.add_typer(rubric_app, name="rubric")
users_app = typer.Typer(help="Accounts for the review desk (`qa review`).", no_args_is_help=True)
app.add_typer(users_app, name="users")
policy_app = typer.Typer(help="Work with review policy files (`qa review --policy`).", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


# Options shared by `qa run` and `qa transcribe`.
AudioDirArg = Annotated[Path, typer.Argument(help="Folder of recordings (searched recursively).")]
ManifestOpt = Annotated[Optional[Path], typer.Option(help="CSV with call_id,path,agent_id,... (paths relative to it).")]
NamePatternOpt = Annotated[Optional[str], typer.Option(help="Metadata from file names, e.g. '{date}_{agent_id}_{call_id}.wav'.")]
ModelOpt = Annotated[str, typer.Option(help="'base' (embedded), a hub name such as large-v3, or a CTranslate2 folder.")]
DeviceOpt = Annotated[Device, typer.Option(help="Where Whisper runs.")]
ComputeTypeOpt = Annotated[Optional[str], typer.Option(help="CTranslate2 compute type. [default: int8 on CPU, float16 on GPU]")]
CacheDirOpt = Annotated[Optional[Path], typer.Option(help="Transcript cache. [default: ~/.cache/qa-pipeline/transcripts]")]
MaxDurationOpt = Annotated[float, typer.Option(help="Longest call accepted, in minutes; longer ones fail.")]
BeamSizeOpt = Annotated[int, typer.Option(help="Whisper beam size (1 = greedy, fastest).")]
DecoderOpt = Annotated[Decoder, typer.Option(help="packed: speech of several calls packed into batched windows; sequential: one channel at a time.")]
BatchSizeOpt = Annotated[int, typer.Option(help="Windows per batch with --decoder packed; 0 = from free GPU memory (CUDA) or 16 (CPU).")]
CpuThreadsOpt = Annotated[int, typer.Option(help="Threads of each model replica on the CPU; part of the cache key (results may depend on it).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log each stage.")]


@app.callback()
def _utf8() -> None:
    # File names are bytes; a C/POSIX locale without Python's UTF-8 mode (PYTHONUTF8=0, some
    # embedded Pythons) reads them and the terminal as ASCII, and a Chinese name would end the
    # batch. The command then starts again, the same, in UTF-8 mode.
    ascii_names = sys.getfilesystemencoding().lower().replace("-", "") != "utf8"
    if ascii_names and os.environ.get("PYTHONUTF8") != "1" and Path(sys.argv[0]).name in ("qa", "cli.py"):
        os.environ["PYTHONUTF8"] = "1"
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def _default_rubric() -> Path:
    from qa_pipeline.scoring.rubric import rubric_path_default

    return rubric_path_default()


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {shown(message)}", err=True)
    raise typer.Exit(code)


# What never reaches the terminal raw, whatever a file name or a manifest holds: C0 and C1 control
# characters (ESC starts a terminal command), DEL, the bidirectional overrides and isolates (an
# RTL override shows a name backwards), and the lone surrogates a non-UTF-8 (GBK) file name leaves.
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSHOWABLE_IN_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def shown(text: object, *, lines: bool = False) -> str:
    """``text`` safe for a terminal: every character of _UNSHOWABLE as U+FFFD (``lines``: line
    breaks and tabs kept, for logs with tracebacks)."""
    return (_UNSHOWABLE_IN_LINES if lines else _UNSHOWABLE).sub("\ufffd", str(text))


class _ShownFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return shown(super().format(record), lines=True)


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_ShownFormatter("%(levelname)s %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])


@app.command()
def run(
    audio_dir: AudioDirArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for Parquet tables and reports.")],
    manifest: ManifestOpt = None,
    name_pattern: NamePatternOpt = None,
    rubric: Annotated[Optional[Path], typer.Option(help="Rubric YAML. [default: rubrics/default.zh.yaml]")] = None,
    model: ModelOpt = "base",
    device: DeviceOpt = Device.auto,
    compute_type: ComputeTypeOpt = None,
    cache_dir: CacheDirOpt = None,
    max_duration: MaxDurationOpt = 240.0,
    beam_size: BeamSizeOpt = 1,
    decoder: DecoderOpt = Decoder.packed,
    batch_size: BatchSizeOpt = 0,
    cpu_threads: CpuThreadsOpt = 2,
    hotwords: Annotated[bool, typer.Option(help="Prime Whisper with the rubric's expected phrases (see README: measured, off by default).")] = False,
    engine: Annotated[EngineKind, typer.Option(help="local: this machine; ray: a Ray cluster (pip install 'qa-pipeline[ray]').")] = EngineKind.local,
    ray_address: Annotated[Optional[str], typer.Option(help="With --engine ray: 'auto' (the cluster this node is in) or HOST:PORT. [default: a local Ray instance]")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Try again the calls that failed for good (retry=no in failed.csv, crashed twice).")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Transcribe and score every call under AUDIO_DIR; write OUT/transcripts, OUT/scores, OUT/reports.

    Examples:

      qa run recordings/2025-03-03 --out qa-out/2025-03-03 --manifest recordings/2025-03-03/manifest.csv

      qa run recordings/ --out qa-out --name-pattern '{date}_{agent_id}_{call_id}.wav' --model large-v3

      qa run /shared/recordings/2025-03-03 --out /shared/qa-out/2025-03-03 --engine ray --ray-address auto
    """
    _pin_threads(cpu_threads)
    from qa_pipeline.scoring.rubric import load_rubric, rubric_hotwords

    _setup_logging(verbose)
    rubric = rubric or _default_rubric()
    words = None
    if hotwords:
        try:
            words = rubric_hotwords(load_rubric(rubric))
        except QaError as e:
            _fail(str(e))
    config = _config(audio_dir, out, manifest, name_pattern, model, device, compute_type, cache_dir, max_duration,
                     beam_size, decoder, batch_size, cpu_threads, rubric=rubric, hotwords=words, retry_failed=retry_failed)
    if engine is EngineKind.ray:
        try:
            from qa_pipeline.batch.ray import RayEngine
        except ImportError as e:
            _fail(f"--engine ray needs Ray: pip install 'qa-pipeline[ray]' ({e})")
        _run_and_report(lambda progress: _run_batch(config, RayEngine(ray_address), progress))
        return
    if ray_address is not None:
        _fail("--ray-address needs --engine ray")
    from qa_pipeline.batch.local import LocalEngine

    _run_and_report(lambda progress: _run_batch(config, LocalEngine(), progress))


def _run_batch(config, engine, progress):
    from qa_pipeline.batch.engine import run_batch

    return run_batch(config, engine, on_progress=progress)


def _pin_threads(cpu_threads: int) -> None:
    """Give the numeric libraries' thread pools (OpenMP under CTranslate2, numpy's BLAS) the threads
    of a model replica, whatever the shell or a cluster had set, before any of them is loaded: on
    some CPUs (Intel MKL) Whisper's numbers change with the count."""
    if cpu_threads >= 1:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = str(cpu_threads)


def _config(audio_dir, out, manifest, name_pattern, model, device, compute_type, cache_dir, max_duration, beam_size,
            decoder, batch_size, cpu_threads, *, rubric=None, hotwords=None, retry_failed=False):
    """The one RunConfig of `qa run` and `qa transcribe`, from their shared options."""
    from qa_pipeline.asr.transcribe import TranscribeOptions
    from qa_pipeline.batch.config import Inputs, RunConfig, TranscribeConfig

    try:
        return RunConfig(
            inputs=Inputs(audio_dir, manifest=manifest, name_pattern=name_pattern),
            out=out,
            transcribe=TranscribeConfig(
                model=model, device=device, compute_type=compute_type, cache_dir=cache_dir,
                max_duration_s=max_duration * 60, cpu_threads=cpu_threads,
                options=TranscribeOptions(beam_size=beam_size, decoder=decoder, batch_size=batch_size, hotwords=hotwords),
            ),
            rubric=rubric,
            retry_failed=retry_failed,
        )
    except QaError as e:
        _fail(str(e))


@app.command()
def transcribe(
    audio_dir: AudioDirArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the transcript tables.")],
    manifest: ManifestOpt = None,
    name_pattern: NamePatternOpt = None,
    model: ModelOpt = "base",
    device: DeviceOpt = Device.auto,
    compute_type: ComputeTypeOpt = None,
    cache_dir: CacheDirOpt = None,
    max_duration: MaxDurationOpt = 240.0,
    beam_size: BeamSizeOpt = 1,
    decoder: DecoderOpt = Decoder.packed,
    batch_size: BatchSizeOpt = 0,
    cpu_threads: CpuThreadsOpt = 2,
    verbose: VerboseOpt = False,
) -> None:
    """Transcribe every call under AUDIO_DIR into the transcript cache and OUT/transcripts; no scoring.

    A later `qa run` on the same audio with the same model and options transcribes nothing again.

    Example:

      qa transcribe recordings/2025-03-03 --out qa-out/2025-03-03 --manifest recordings/2025-03-03/manifest.csv
    """
    _pin_threads(cpu_threads)
    from qa_pipeline.batch.transcribe_only import transcribe_batch

    _setup_logging(verbose)
    config = _config(audio_dir, out, manifest, name_pattern, model, device, compute_type, cache_dir, max_duration,
                     beam_size, decoder, batch_size, cpu_threads)
    _run_and_report(lambda progress: transcribe_batch(config, on_progress=progress), done="transcribed",
                    result="transcripts")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("qa-demo"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Score the sample calls shipped with the package, with the embedded model, offline.

    Example:

      qa demo --out /tmp/qa-demo
    """
    _pin_threads(2)  # the default --cpu-threads of qa run
    from qa_pipeline.batch.config import Inputs, RunConfig
    from qa_pipeline.batch.local import LocalEngine
    from qa_pipeline.demo import demo_dir

    _setup_logging(verbose)
    calls = demo_dir()
    config = RunConfig(Inputs(calls, manifest=calls / "manifest.csv"), out, rubric=_default_rubric())
    _run_and_report(lambda progress: _run_batch(config, LocalEngine(), progress))


@app.command()
def score(
    out: Annotated[Path, typer.Argument(help="Output folder of an earlier `qa run`.")],
    rubric: Annotated[Optional[Path], typer.Option(help="Rubric YAML. [default: rubrics/default.zh.yaml]")] = None,
) -> None:
    """Re-score the cached transcripts in OUT with a (new) rubric, without running any model.

    Example:

      qa score qa-out/2025-03-03 --rubric rubrics/strict.zh.yaml
    """
    from qa_pipeline.batch.rescore import rescore

    _setup_logging(False)
    _run_and_report(lambda progress: rescore(out, rubric or _default_rubric()))


@rubric_app.command("check")
def rubric_check(file: Annotated[Path, typer.Argument(help="Rubric YAML to validate.")]) -> None:
    """Validate a rubric file; print its items, or the first error with file and line.

    Example:

      qa rubric check rubrics/default.zh.yaml
    """
    from qa_pipeline.scoring.rubric import load_rubric

    try:
        loaded = load_rubric(file)
    except QaError as e:
        _fail(str(e), code=1)
    typer.echo(f"{file}: ok — rubric {loaded.id} v{loaded.version}, {len(loaded.items)} items, pass score {loaded.pass_score}")
    for item in loaded.items:
        typer.echo(f"  {item.id:<26} {item.weight:>5g} pts  {item.check.type}{'  (critical)' if item.critical else ''}")
    for company in loaded.centre.companies:
        typer.echo(f"  centre: {' / '.join(company.names)}" + (f"  (teams: {', '.join(company.teams)})" if company.teams else ""))


ReviewOutArg = Annotated[Path, typer.Argument(help="Output folder of `qa run` (its review database is OUT/review.db).")]
MIN_PASSWORD = 8


@app.command()
def review(
    out: ReviewOutArg,
    host: Annotated[str, typer.Option(help="Address to listen on; anything but 127.0.0.1 lets other machines reach the sign-in page.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8377,
    policy: Annotated[Optional[Path], typer.Option(help="Review policy YAML. [default: OUT/review-policy.yaml if present, else built-in]")] = None,
    root: Annotated[bool, typer.Option("--root", help="Print a one-time sign-in link as the supervisor 'root' (no password is ever set).")] = False,
) -> None:
    """Open the review desk on OUT: the queue, call cards with audio, overrides, disputes, audit trail.

    Example:

      qa review qa-out/2025-03-03 --root
    """
    import socket

    from qa_pipeline.review.app import create_app, make_desk, root_link, serve
    from qa_pipeline.review.policy import policy_for

    try:
        loaded = policy_for(out, policy)
        desk = make_desk(out, loaded)
    except QaError as e:
        _fail(str(e))
    try:  # a clear message rather than uvicorn's when the port is taken
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as e:
        _fail(f"cannot listen on {host}:{port}: {e.strerror or e} (choose another --port)")
    web = create_app(desk)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: listening on {host}: other machines can reach the sign-in page", err=True)

    def ready(base: str) -> None:
        desk.folder.preload()  # the night's transcripts, for the first call card, while the queue is looked at
        n = len(desk.folder.scores)
        typer.echo(f"review desk for {out.resolve()} ({n} calls): {base}/   (Ctrl-C to stop)")
        if root:
            typer.echo(f"one-time sign-in link (supervisor 'root'): {root_link(web, base)}")

    serve(web, host=host, port=port, on_ready=ready)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[Role, typer.Option(help="inspector: reviews; supervisor: reviews and resolves disputes; agent: sees and disputes own calls; manager: reads everything.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder whose desk the account is for.")],
    agent_id: Annotated[Optional[str], typer.Option(help="For --role agent: the agent_id of their calls.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input instead of asking.")] = False,
) -> None:
    """Add an account to OUT's review desk, or give an existing one a new role and password.

    The password is asked for (twice) and stored as an argon2 hash, never as text.

    Example:

      qa users add 李娜 --role inspector --out qa-out/2025-03-03
    """
    from qa_pipeline.review.auth import hash_password
    from qa_pipeline.review.db import ReviewDB

    if not out.is_dir():
        _fail(f"{out}: not a folder (run `qa run` into it first)")
    if (role is Role.agent) != bool(agent_id):
        _fail("--agent-id is needed for --role agent, and only for it")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        _fail(f"password too short (at least {MIN_PASSWORD} characters)")
    try:
        user = ReviewDB.open(out).put_user(name, role.value, agent_id, hash_password(password))
    except QaError as e:
        _fail(str(e))
    suffix = f" for agent {user.agent_id}" if user.agent_id else ""
    typer.echo(f"{user.name}: {user.role}{suffix} (review desk of {out})")


@users_app.command("list")
def users_list(out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]) -> None:
    """List the accounts of OUT's review desk.

    Example:

      qa users list --out qa-out/2025-03-03
    """
    from qa_pipeline.review.db import open_if_exists

    db = open_if_exists(out)
    for user in db.users() if db else []:
        typer.echo(f"{user.name}\t{user.role}\t{user.agent_id or ''}")


@policy_app.command("check")
def policy_check(file: Annotated[Path, typer.Argument(help="Review policy YAML to validate.")]) -> None:
    """Validate a review policy file; print what it sets, or the first error with file and line.

    Example:

      qa policy check qa-out/review-policy.yaml
    """
    from qa_pipeline.review.policy import load_policy

    try:
        p = load_policy(file)
    except QaError as e:
        _fail(str(e), code=1)
    q, sample = p.queue, p.queue.sample
    size = f"{sample.percent:g}% of" if sample.percent is not None else f"{sample.per_agent}"
    typer.echo(f"{file}: ok — queue: needs_review={q.needs_review}, critical_failures={q.critical_failures}, "
               f"below_pass={q.below_pass}, sample {size} calls per agent per day (seed {sample.seed!r}); "
               f"disputes within {p.disputes.window_days} days; auto-verdict trusted while agreement over the last "
               f"{p.trust.last_n} labelled calls >= {p.trust.min_agreement:.0%}")


@app.command()
def calibrate(
    out: Annotated[Path, typer.Argument(help="Output folder of an earlier `qa run`.")],
    labels: Annotated[Optional[Path], typer.Option(help="Labels: CSV call_id,item_id,result[,inspector] or labels.json. [default: the review desk's decisions in OUT, OUT/labels.csv, OUT/labels.json]")] = None,
    rubric: Annotated[Optional[Path], typer.Option(help="Candidate rubric: re-score the labelled calls from their transcripts and compare.")] = None,
    since: Annotated[Optional[str], typer.Option(help="Only calls from this day on (YYYY-MM-DD).")] = None,
) -> None:
    """How often the machine agrees with the inspectors, per rubric item (and a candidate rubric's).

    Prints per item: labelled n, agreement, Cohen's κ, precision and recall of `fail`, share flagged
    needs_review, confusion; writes OUT/calibration/*.parquet and OUT/reports/calibration.html.

    Examples:

      qa calibrate qa-out --labels labels.csv

      qa calibrate qa-out --labels labels.csv --rubric rubrics/candidate.zh.yaml --since 2025-03-01
    """
    from rich.console import Console

    from qa_pipeline.calibration import console as show
    from qa_pipeline.calibration.command import calibrate_out
    from qa_pipeline.calibration.labels import label_source

    day = _day(since) if since else None
    try:
        run = calibrate_out(out, label_source(out, labels), rubric=rubric, since=day)
    except QaError as e:
        _fail(str(e))
    c = run.calibration
    con = Console(width=max(Console().width, 120))
    con.print(show.items_table(c))
    if c.left_out:
        typer.echo(f"{c.left_out} labels of calls before {day} left out")
    if c.inspectors:
        con.print(show.raters_table(c.inspectors, "between inspectors (same call and item)"))
    if c.versus_machine:
        con.print(show.raters_table(c.versus_machine, "each inspector against the machine"))
    if c.unmatched:
        typer.echo(f"{len(c.unmatched)} labels not compared:")
        for line in show.unmatched_lines(c.unmatched):
            typer.echo(line)
    if run.candidate is not None:
        cand = run.candidate
        con.print(show.candidate_table(cand))
        typer.echo(f"{len(cand.changes)} verdicts change on {cand.n_calls} re-scored calls ({cand.seconds:.1f} s, no model)")
        for line in show.change_lines(cand):
            typer.echo(line)
        if cand.no_transcript:
            typer.echo(f"no transcript to re-score: {', '.join(cand.no_transcript)}")
    typer.echo(f"tables: {run.tables.resolve()}")
    typer.echo(f"report: {run.page.resolve()}")


def _day(value: str):
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"--since {value!r}: expected a day as YYYY-MM-DD")


@rubric_app.command("test")
def rubric_test(
    file: Annotated[Path, typer.Argument(help="Rubric YAML to test.")],
    labels: Annotated[Path, typer.Option(help="Labels: CSV call_id,item_id,result[,inspector] or labels.json.")],
    transcripts: Annotated[Path, typer.Option(help="Output folder holding the labelled calls' transcripts (`qa run` or `qa transcribe`).")],
    min_agreement: Annotated[Optional[float], typer.Option(help="Floor for every item (0-1), instead of the rubric's min_agreement.")] = None,
) -> None:
    """Score labelled calls with a rubric; exit 1 when an item's agreement is under its floor.

    The floor: --min-agreement, else the item's or the rubric's `min_agreement`. No model runs.

    Example:

      qa rubric test rubrics/my-centre.zh.yaml --labels labels.csv --transcripts qa-out --min-agreement 0.9
    """
    from rich.console import Console

    from qa_pipeline.calibration import console as show
    from qa_pipeline.calibration.labels import FileLabels
    from qa_pipeline.calibration.rule_test import rubric_test as run_test
    from qa_pipeline.scoring.rubric import load_rubric

    source = FileLabels(labels)
    try:
        result = run_test(load_rubric(file), source.read(), transcripts, source=source.name, min_agreement=min_agreement)
    except QaError as e:
        _fail(str(e))
    Console(width=max(Console().width, 100)).print(show.rubric_test_table(result))
    c = result.calibration
    if c.unmatched:
        typer.echo(f"{len(c.unmatched)} labels not compared:")
        for line in show.unmatched_lines(c.unmatched):
            typer.echo(line)
    below = [f.item.item_id for f in result.items if f.below]
    if below:
        typer.echo(f"FAILED: agreement under the floor on {', '.join(below)}")
        raise typer.Exit(1)
    typer.echo(f"ok: every labelled item at or above its floor ({c.overall.stats.n} labels)")


def _run_and_report(job, *, done: str = "scored", result: str = "report") -> None:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[audio]}"), TimeElapsedColumn(), TextColumn("{task.fields[eta]}"))
    try:
        with _stop_on_signals(), Progress(*columns, transient=False, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("calls", total=None, audio="", eta="")

            def progress(p) -> None:
                audio = f"{p.audio_done_s / 3600:.2f} h audio"
                eta = "ETA ?" if p.eta_s is None and p.done < p.total else f"ETA {_duration(p.eta_s or 0.0)}"
                how = " (earlier run)" if p.reused else " (cached)" if p.from_cache else ""
                bar.update(task, total=p.total, completed=p.done, audio=audio, eta=eta,
                           description=escape(f"{shown(p.call_id)} {p.status}{how}"))
                if not sys.stderr.isatty():
                    typer.echo(f"[{p.done}/{p.total}] {shown(p.call_id)}: {p.status}{how} — {audio}, {eta}", err=True)

            summary = job(progress)
    except QaError as e:
        _fail(str(e))
    except Stopped as e:
        _fail(f"{e}; run the same command again to finish (calls done so far are kept)", code=e.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted; run the same command again to finish (calls done so far are kept)", code=130)
    speed = (f", {summary.audio_s / summary.wall_s:.1f}× real time"
             if summary.wall_s > 0 and summary.audio_s and not summary.reused else "")
    reused = f"; {summary.reused} done by an earlier run" if summary.reused else ""
    typer.echo(f"{summary.total} calls: {summary.ok} {done}, {summary.failed} failed "
               f"({summary.audio_s / 60:.1f} min of audio in {summary.wall_s:.0f} s{speed}{reused})")
    for call_id, error in summary.failures[:MAX_FAILURES_SHOWN]:
        typer.echo(f"  failed {shown(call_id)}: {shown(error)}")
    if len(summary.failures) > MAX_FAILURES_SHOWN:
        typer.echo(f"  … and {len(summary.failures) - MAX_FAILURES_SHOWN} more")
    if summary.failed and summary.failed_list:
        typer.echo(f"failed calls: {shown(summary.failed_list.resolve())} (run the same command again to retry "
                   "those marked retry=yes; add --retry-failed for the others)")
    if summary.run_log:
        typer.echo(f"run log: {shown(summary.run_log.resolve())}")
    typer.echo(f"{result}: {shown(summary.report_index.resolve())}")
    if summary.failed:
        raise typer.Exit(1)


MAX_FAILURES_SHOWN = 20
STOP_SIGNALS = ("SIGTERM", "SIGHUP")  # handled as SIGINT (Ctrl-C): a scheduler's stop, a shutdown, a closed terminal


@contextmanager
def _stop_on_signals():
    """While a batch runs, SIGTERM and SIGHUP stop it as Ctrl-C does (errors.Stopped): the work in
    hand is put down cleanly (in-flight calls are not counted as crashes), the run log gets its
    abort record, and the command exits 128 + the signal's number. A second signal while the
    batch stops is ignored (SIGKILL still ends it at once)."""
    stopping = []

    def stop(signum, _frame) -> None:
        if stopping:
            return
        stopping.append(signum)
        name = signal.Signals(signum).name
        raise Stopped(name, 128 + signum)

    previous = {name: signal.signal(getattr(signal, name), stop) for name in STOP_SIGNALS if hasattr(signal, name)}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


if __name__ == "__main__":
    app()
