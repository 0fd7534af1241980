"""A PostgreSQL schema per benchmark node (dropped at the end), so several
nodes share one database the way tests do."""

from __future__ import annotations

import os
import re

from sqlalchemy import create_engine, make_url, text


class PostgresSchemas:
    def __init__(self, database_url: str, prefix: str) -> None:
        self.database_url = database_url
        self.prefix = prefix
        self.schemas: list[str] = []

    def url_for(self, label: str) -> str:
        """A URL whose connections use a fresh schema named after `label`."""
        schema = f"{self.prefix}_{os.getpid()}_{re.sub(r'[^a-z0-9]', '_', label.lower())}"
        self._admin(f'CREATE SCHEMA "{schema}"')
        self.schemas.append(schema)
        url = make_url(self.database_url).update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    def _admin(self, sql: str) -> None:
        engine = create_engine(self.database_url)
        try:
            with engine.begin() as conn:
                conn.execute(text(sql))
        finally:
            engine.dispose()

    def close(self) -> None:
        for schema in self.schemas:
            self._admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
