"""Alembic environment: hubcost passes the connection and the reader role in `attributes`.

Run by hand (`alembic -c alembic.ini ...` in a checkout) it reads them from the settings.
"""

from alembic import context

from core.schema import include_object, metadata

config = context.config


def _configure_and_run(**kwargs):
    context.configure(
        target_metadata=metadata,
        include_object=include_object,
        compare_type=True,
        **kwargs,
    )
    with context.begin_transaction():
        context.run_migrations()


def _by_hand_settings():
    from core.settings import Settings

    settings = Settings.from_env()
    config.attributes.setdefault("api_db_role", settings.api_db_role)
    config.attributes.setdefault("cluster_name", settings.clusters[0].name)
    return settings


def _run_online():
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection=connection)
        return
    from core import bootstrap

    engine = bootstrap.writer_engine(_by_hand_settings(), pool_size=1)
    try:
        with engine.connect() as connection:
            _configure_and_run(connection=connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    _by_hand_settings()
    _configure_and_run(url="postgresql+psycopg://", literal_binds=True)
else:
    _run_online()
