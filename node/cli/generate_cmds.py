"""`gcn generate seizures|alerts`: realistic records for demos, load tests and
training (`node.domain.generator`), one protobuf-JSON record per line, the
format `gcn seizure import` reads. Deterministic for a seed; record i is the
same whatever the count, so `--start` resumes a stream; written as made, in
constant memory, at any volume (the CEN's 2.5 million seizures)."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime

import click

from node.cli.errors import CliError


def _today(value: str | None) -> date:
    if not value:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise CliError(f"--today {value!r} is not a date (YYYY-MM-DD)") from e


def _options(f: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(
        (
            click.option("--count", type=click.IntRange(1), required=True, help="how many records"),
            click.option(
                "--seed", type=int, default=1, show_default=True, help="the same seed, the same records"
            ),
            click.option(
                "--start",
                type=click.IntRange(0),
                default=0,
                show_default=True,
                help="the index of the first record",
            ),
            click.option(
                "--country",
                "countries",
                multiple=True,
                metavar="CC",
                help="seizures made in this country only (repeatable; default: along each trade route)",
            ),
            click.option(
                "--years",
                type=click.IntRange(1, 50),
                default=10,
                show_default=True,
                help="dates spread over this many years",
            ),
            click.option("--today", metavar="DATE", help="the newest date (default: today, UTC)"),
            click.option(
                "--output",
                "-o",
                type=click.Path(dir_okay=False, writable=True),
                help="write here instead of stdout",
            ),
        )
    ):
        f = option(f)
    return f


def _write(
    kind: str,
    count: int,
    seed: int,
    start: int,
    countries: tuple[str, ...],
    years: int,
    today: str | None,
    output: str | None,
) -> int:
    from node.admin import generated_json_lines

    try:
        lines = generated_json_lines(
            kind,
            count,
            seed=seed,
            today=_today(today),
            countries=tuple(c.upper() for c in countries),
            years=years,
            start=start,
        )
        out = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
        try:
            for line in lines:
                out.write(line + "\n")
        finally:
            if output:
                out.close()
    except ValueError as e:  # an unknown country
        raise CliError(f"--country: {e}") from e
    return 0


@click.command()
@click.argument("kind", type=click.Choice(["seizures", "alerts"]))
@_options
def generate(
    kind: str,
    count: int,
    seed: int,
    start: int,
    countries: tuple[str, ...],
    years: int,
    today: str | None,
    output: str | None,
) -> int:
    """Realistic seizures (ivory, pangolin scales, rosewood, HCFC-22, e-waste,
    plastic waste, ...) or alerts on the vessels, containers, companies and
    routes those seizures carry, as JSON lines."""
    return _write(kind, count, seed, start, countries, years, today, output)
