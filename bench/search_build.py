"""The store the search benchmark queries: one node (national, KE) whose
records were made by its own code (`RecordService.import_seizures`, batches
of 1,000 validated, sealed, stored and indexed as a CEN history import is), so
its envelopes, records and record_terms rows are genuine.

Building millions takes a while on a small machine, so a store can be kept
(`--reuse DIR`: the node's directory, with its SQLite file, or its config
pointing at the PostgreSQL schema `bench_search`) and topped up to a larger
size later; `built.json` in DIR says what it holds and how fast it was built.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, make_url, select, text

from bench.common import step
from bench.schemas import PostgresSchemas
from bench.search_data import Probes, SeizureSource
from node.app import NodeApp
from node.bootstrap import CONFIG_FILE, init_node
from node.clock import system_clock
from node.config import load_config
from node.storage.models import EnvelopeRow, RecordRow, RecordTermRow

NODE_ID, COUNTRY = "KE", "KE"
REUSE_SCHEMA = "bench_search"
BATCH = 1000


@dataclass
class Store:
    app: NodeApp
    directory: Path
    probes: Probes
    built: dict[str, Any] = field(default_factory=dict)  # what built.json says

    def counts(self) -> dict[str, int]:
        with self.app.db.read() as s:

            def n(model: Any) -> int:
                return int(s.scalar(select(func.count()).select_from(model)) or 0)

            return {"envelopes": n(EnvelopeRow), "records": n(RecordRow), "record_terms": n(RecordTermRow)}

    def size_bytes(self) -> int | None:
        url = make_url(self.app.config.database_url)
        if url.get_backend_name() == "sqlite":
            path = Path(url.database or "")
            path = path if path.is_absolute() else self.directory / path
            return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        with self.app.db.read() as s:
            row = s.execute(
                text(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                )
            ).scalar()
        return int(row or 0)


def _pg_url(database_url: str, schema: str) -> str:
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        engine.dispose()
    url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def _open_node(directory: Path, database_url: str) -> NodeApp:
    if not (directory / CONFIG_FILE).exists():
        init_node(
            directory,
            node_id=NODE_ID,
            name="search bench",
            role="national",
            country=COUNTRY,
            database_url=database_url,
        )
    config = load_config(directory / CONFIG_FILE)
    return NodeApp.open(config, system_clock)


def _top_up(store: Store, records: int, seed: int) -> None:
    """Record seizures until the store holds `records` of them (built.json)."""
    held = int(store.built.get("records", 0))
    missing = records - held
    if missing <= 0:
        return
    step(f"building: {missing:,} seizures through import_seizures (batches of {BATCH:,}) onto {held:,}")
    source = SeizureSource(seed + held, system_clock().date())
    start = time.perf_counter()
    done = 0
    report_every = max(BATCH, missing // 20)

    def seizures() -> Iterator[Any]:
        nonlocal done
        for s in source.seizures(missing):
            done += 1
            if done % report_every == 0:
                rate = done / (time.perf_counter() - start)
                step(f"  {held + done:,} records, {rate:,.0f} records/s")
            yield s

    stored = store.app.records.import_seizures(seizures(), batch_size=BATCH)
    seconds = time.perf_counter() - start
    probes = store.probes
    for name, values in vars(source.probes).items():
        if name == "common_words":
            setattr(probes, name, values if not getattr(probes, name) else getattr(probes, name))
        else:
            getattr(probes, name).extend(values)
    store.built["records"] = held + stored
    store.built.setdefault("builds", []).append(
        {
            "records": stored,
            "onto": held,
            "seconds": round(seconds, 1),
            "records_per_s": round(stored / seconds),
        }
    )
    probes.save(store.directory / "probes.json")
    (store.directory / "built.json").write_text(json.dumps(store.built, indent=2) + "\n")


def _recover(store: Store, seed: int) -> None:
    """A build stopped before it wrote built.json: count what it stored and
    draw its seizures again (the same seed gives the same ones) for the probes."""
    held = store.counts()["records"]  # one records row per seizure on this node (its policy)
    step(f"recovering a stopped build: {held:,} records held; drawing their probes again")
    source = SeizureSource(seed, system_clock().date())
    for _ in source.seizures(held):
        pass
    store.probes = source.probes
    store.built = {"records": held, "builds": [], "recovered": True}
    store.probes.save(store.directory / "probes.json")
    (store.directory / "built.json").write_text(json.dumps(store.built, indent=2) + "\n")


def analyze(store: Store) -> float:
    """ANALYZE the store (planner statistics); seconds taken."""
    start = time.perf_counter()
    with store.app.db.begin() as s:
        s.execute(text("ANALYZE"))
    return time.perf_counter() - start


@contextmanager
def search_store(records: int, database_url: str | None, reuse: Path | None, seed: int) -> Iterator[Store]:
    """A node holding `records` seizures: kept in `reuse` (built or topped up
    there) or built in a temp dir / temporary schema and dropped."""
    with tempfile.TemporaryDirectory(prefix="gcn-bench-search-") as tmp:
        schemas = None
        directory = reuse or Path(tmp) / "node"
        if reuse is not None:
            url = _pg_url(database_url, REUSE_SCHEMA) if database_url else "sqlite:///gcn.sqlite"
        elif database_url:
            schemas = PostgresSchemas(database_url, "gcn_bench_search")
            url = schemas.url_for("store")
        else:
            url = "sqlite:///gcn.sqlite"
        directory.mkdir(parents=True, exist_ok=True)
        try:
            app = _open_node(directory, url)
            try:
                built_file, probes_file = directory / "built.json", directory / "probes.json"
                built = json.loads(built_file.read_text()) if built_file.exists() else {}
                probes = Probes.load(probes_file) if probes_file.exists() else Probes()
                store = Store(app, directory, probes, built)
                if not built_file.exists() and store.counts()["records"]:
                    _recover(store, seed)
                _top_up(store, records, seed)
                yield store
            finally:
                app.close()
        finally:
            if schemas is not None:
                schemas.close()
