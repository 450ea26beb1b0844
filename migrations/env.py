"""Alembic environment: the connection (or URL) comes from hubcost, never from alembic.ini."""

from alembic import context

from etl.schema import include_object, metadata

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


def _run_online():
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection=connection)
        return
    from etl.database import create_engine, database_url
    from etl.settings import Settings

    engine = create_engine(database_url(Settings.from_env()), pool_size=1)
    try:
        with engine.connect() as connection:
            _configure_and_run(connection=connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    _configure_and_run(url="postgresql+psycopg://", literal_binds=True)
else:
    _run_online()
