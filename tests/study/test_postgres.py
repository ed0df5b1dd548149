"""Studies on a real PostgreSQL server (started by scripts/postgres.sh): worker processes share
one, pooled connections survive the server dropping them, errors never show the password."""

import uuid

import pytest
import sqlalchemy
from sharing import SharedWork

import lrtune

pytestmark = pytest.mark.postgres


def _name():
    return f"pg-{uuid.uuid4().hex[:8]}"


def _drop_other_connections(url):
    """What a server restart, an idle timeout or a firewall does to idle pooled connections."""
    admin = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as conn:
        return len(conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall())


@pytest.mark.slow
def test_worker_processes_share_a_postgres_study(postgres_url, own_loop, audit, fault_free,
                                                  halving):
    name, reported = _name(), []
    shared = SharedWork(own_loop, postgres_url, name, workers=2)
    lrtune.tune(shared, storage=postgres_url, study_name=name, workers=3,
                callbacks=[lambda study, record: reported.append(record.number)], **halving)
    result, expected = audit(postgres_url, name), fault_free(own_loop, **halving)
    assert len(result.finished) == 13
    assert result.finished == expected.finished  # same configs, same values: seeds by study
    assert result.duplicates == 0 and result.lost == []
    assert result.best == expected.best and result.spent == pytest.approx(expected.spent)
    assert len(result.workers) >= 2  # the work was shared (SharedWork waits for it)
    # the parent called the callbacks once for every trial any worker finished
    assert sorted(reported) == [t.number for t in lrtune.load_study(name, postgres_url).trials]


def test_connections_dropped_by_the_server_are_replaced(postgres_url, own_loop):
    name = _name()
    study = lrtune.tune(own_loop, storage=postgres_url, study_name=name, steps=60, budget=2.0,
                        strategy="grid", space=lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd"))
    before = [(t.number, t.value) for t in study.trials]
    assert _drop_other_connections(postgres_url) >= 1  # the study's pooled connection among them
    assert [(t.number, t.value) for t in study.trials] == before  # read through a fresh one
    assert study.record(study.optuna.trials[0]._trial_id).value == before[0][1]
    # without pre-ping the same drop breaks the next call: the check above is not vacuous
    plain = sqlalchemy.create_engine(postgres_url)
    with plain.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    _drop_other_connections(postgres_url)
    with pytest.raises(sqlalchemy.exc.OperationalError), plain.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


def test_a_wrong_password_is_reported_without_any_password(postgres_url):
    url = sqlalchemy.engine.make_url(postgres_url)
    wrong = url.set(password="not-the-password").render_as_string(hide_password=False)
    with pytest.raises(lrtune.StorageError) as err:
        lrtune.tune(lambda trial: 1.0, steps=10, strategy="grid", storage=wrong,
                    study_name=_name())
    message = str(err.value)
    assert "password authentication failed" in message
    assert "not-the-password" not in message and url.password not in message
    assert f"lrtune:***@{url.host}:{url.port}/lrtune" in message
