from pathlib import Path

import pytest
from sqlalchemy import inspect

from shared.db.session import get_engine
from shared.settings import Settings


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        from shared.db.migrate import upgrade

        url = Settings(data_dir=tmp_path).database_url
        upgrade(url)
        return url
    return str(request.getfixturevalue("pg_database"))


def test_migrations_create_every_table(database_url: str) -> None:
    tables = set(inspect(get_engine(database_url)).get_table_names())
    assert {"jobs", "job_events", "metrics", "artifacts", "datasets", "alembic_version"} <= tables
    columns = {
        column["name"] for column in inspect(get_engine(database_url)).get_columns("job_events")
    }
    assert {"id", "job_id", "type", "status", "message", "payload", "at"} <= columns
