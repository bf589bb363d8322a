"""``hivethink lab``: run a grid from YAML, build its report, show one sample's trace, browse a run.

Bad input (config, paths, sample) prints one line on stderr and exits with code 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand

from hivethink.errors import HivethinkError

RAY_LOCAL = "local"  # `--ray` alone: start a local Ray instance for the run

app = typer.Typer(
    name="lab",
    help="Run lab grids (durable, resumable), build reports, show traces.",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(message: str, code: int = 2) -> NoReturn:
    """Print one line on stderr and exit. ``SystemExit`` (not ``typer.Exit``) so the code survives
    a parent app that runs click with ``standalone_mode=False``."""
    typer.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn expected failures into one line on stderr and exit code 2 (130 on Ctrl-C)."""
    try:
        yield
    except HivethinkError as err:
        _fail(_first_line(err))
    except FileNotFoundError as err:
        _fail(f"{err.filename}: no such file or directory" if err.filename else _first_line(err))
    except OSError as err:  # a directory given for a file or the other way round, no permission
        _fail(f"{err.filename}: {err.strerror}" if err.filename else _first_line(err))
    except yaml.YAMLError as err:
        _fail(f"invalid YAML: {_first_line(err)}")
    except ValidationError as err:
        first = err.errors()[0]
        _fail(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    except KeyboardInterrupt:
        _fail("interrupted; run the same command again to resume", 130)


def _ray_address_like(arg: str) -> bool:
    """Whether the word after ``--ray`` is its address (``local``, ``auto``, ``[ray://]host:port``)
    rather than the config file or another option."""
    return arg in (RAY_LOCAL, "auto") or (":" in arg and not arg.startswith("-"))


def bare_ray_to_local(args: list[str]) -> list[str]:
    """Rewrite a bare ``--ray`` as ``--ray=local`` (typer options cannot have optional values)."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        nxt = args[i + 1] if i + 1 < len(args) else None
        if arg == "--ray" and (nxt is None or not _ray_address_like(nxt)):
            arg = f"--ray={RAY_LOCAL}"
        out.append(arg)
    return out


class _RunCommand(TyperCommand):
    """``lab run``, whose ``--ray`` takes an optional value."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, bare_ray_to_local(args))


@app.command(cls=_RunCommand)
def run(
    config: Annotated[Path, typer.Argument(help="YAML lab config.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Run directory (default: runs/<name>).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=0, help="Run at most N unfinished samples.")
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="[ADDRESS]",
            help="Compute the samples on Ray: bare --ray (or 'local') starts a local Ray for this "
            "run; 'auto', 'ray://HOST:10001' or 'HOST:6379' joins a cluster. Overrides the "
            "config's ray: section (docs/cluster.md).",
        ),
    ] = None,
    ray_gpus: Annotated[
        float | None,
        typer.Option("--ray-gpus", min=0, help="GPUs (a fraction is fine) per Ray worker [0]."),
    ] = None,
    ray_cpus: Annotated[
        float | None, typer.Option("--ray-cpus", min=0, help="CPUs per Ray worker [1].")
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            help="Samples in flight at once in this process (a local model shares passes "
            "between them; a server gets that many requests). Results do not depend on it.",
        ),
    ] = 1,
    prompts: Annotated[
        Path | None,
        typer.Option(
            "--prompts",
            help="Directory of prompt books replacing the built-in ones (overrides the config's "
            "prompts:).",
        ),
    ] = None,
    allow_mixed: Annotated[
        bool,
        typer.Option(
            "--allow-mixed",
            help="Resume even when finished samples were made with other prompts or another "
            "record schema (the new records say so).",
        ),
    ] = False,
) -> None:
    """Run every unfinished sample of the grid; finished ones are skipped (resume)."""
    from hivethink.lab import load_config, resolve_ray, run_lab

    console = Console(stderr=True)
    with _user_errors():
        cfg = load_config(config)
        if prompts is not None:
            cfg = cfg.model_copy(update={"prompts": str(prompts)})
        spec = resolve_ray(cfg, ray, ray_gpus, ray_cpus)
        out_dir = out or Path("runs") / (cfg.name or config.stem)
        summary = run_lab(
            cfg,
            out_dir,
            limit=limit,
            console=console,
            ray=spec,
            concurrency=concurrency,
            allow_mixed=allow_mixed,
        )
    lost = f", {summary.lost} lost (Ray worker died)" if summary.lost else ""
    console.print(
        f"{summary.ran} ran ({summary.failed} failed{lost}), {summary.skipped} already done, "
        f"{summary.remaining} left of {summary.total} -> {escape(str(summary.out_dir))}"
    )
    console.print(f"report: hivethink lab report {escape(str(summary.out_dir))}")


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="Run directory.")]) -> None:
    """Write report.html and summary.md into the run directory."""
    from hivethink.report import build_report

    with _user_errors():
        path = build_report(run_dir)
    typer.echo(str(path))


@app.command()
def show(
    run_dir: Annotated[Path, typer.Argument(help="Run directory.")],
    sample: Annotated[str, typer.Option("--sample", help="Grid index, or a sample key (prefix).")],
    prompts: Annotated[
        bool, typer.Option("--prompts", help="Also print what each worker was shown.")
    ] = False,
) -> None:
    """Print one sample's trace, workers coloured, model text neutralised."""
    from hivethink.report import show_sample

    with _user_errors():
        show_sample(run_dir, sample, Console(), prompts=prompts)


@app.command()
def view(
    run_dir: Annotated[Path, typer.Argument(help="Run directory.")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free one).")] = 0,
    serve: Annotated[
        bool, typer.Option(help="Serve the page on 127.0.0.1 after writing view.html.")
    ] = True,
) -> None:
    """Browse a run: the samples (filter by substrate, task, N, score) and each trace as the
    workers saw it. Writes RUN/view.html (a file to keep or share), then serves it locally."""
    from hivethink.report.viewer import ViewerServer, write_viewer

    with _user_errors():
        if not 0 <= port <= 65535:
            raise HivethinkError(f"--port must be between 0 and 65535, got {port}")
        typer.echo(f"wrote {write_viewer(run_dir)}")
        if not serve:
            return
        server = ViewerServer(run_dir, port)
    typer.echo(f"serving {server.url} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
