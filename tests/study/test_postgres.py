"""Studies on a real PostgreSQL server (started by scripts/postgres.sh): worker processes share
one, pooled connections survive the server dropping them, a worker rides out an outage up to
its limit, errors never show the password."""

import logging
import uuid

import optuna
import pytest
import sqlalchemy
from proxy import Proxy
from sharing import SharedWork

import lrtune
from lrtune.records import TrialState
from lrtune.study import _storage

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


OUTAGE_STUDY = dict(steps=60, budget=2.0, strategy="grid",
                    space=lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd"), seed=0)


class _Refusals(logging.Handler):
    """Counts the retries of storage calls the server refused; calls ``then`` at the n-th."""

    def __init__(self, n, then):
        super().__init__()
        self.count, self._n, self._then = 0, n, then

    def emit(self, record):
        message = record.getMessage()
        if "retrying in" in message and "Connection refused" in message:
            self.count += 1
            if self.count == self._n:
                self._then()


@pytest.fixture
def proxied(postgres_url, monkeypatch):
    """The server behind a proxy the test takes down and up; short retry pauses."""
    monkeypatch.setattr(_storage, "FIRST_PAUSE", 0.01)
    monkeypatch.setattr(_storage, "MAX_PAUSE", 0.05)
    url = sqlalchemy.engine.make_url(postgres_url)
    proxy = Proxy(url.host, url.port)
    yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.down()


def _outage_in_trial_1(objective, proxy):
    def objective_with_outage(trial):
        value = objective(trial)
        if trial.number == 1:  # the server goes away while trial 1 ends
            proxy.down()
        return value
    return objective_with_outage


def _watch(handler):
    log = logging.getLogger("lrtune.study")
    log.addHandler(handler)
    return handler


def test_case_6_a_worker_rides_out_a_server_outage(proxied, own_loop, audit, fault_free):
    proxy, url = proxied
    name = _name()
    refusals = _watch(_Refusals(12, then=proxy.up))  # more retries than the old 15 s allowed
    try:
        lrtune.tune(_outage_in_trial_1(own_loop, proxy), storage=url, study_name=name,
                    **OUTAGE_STUDY)
    finally:
        logging.getLogger("lrtune.study").removeHandler(refusals)
    assert refusals.count == 12
    result, expected = audit(url, name), fault_free(own_loop, **OUTAGE_STUDY)
    assert result.finished == expected.finished and result.lost == []
    assert result.best == expected.best


def test_case_6_an_outage_past_the_limit_stops_the_worker_and_the_next_one_reruns_its_trial(
        proxied, own_loop, audit, fault_free, monkeypatch):
    proxy, url = proxied
    name = _name()
    monkeypatch.setenv("LRTUNE_STORAGE_OUTAGE", "0.5")
    with pytest.raises(lrtune.StorageError) as caught:
        lrtune.tune(_outage_in_trial_1(own_loop, proxy), storage=url, study_name=name,
                    **OUTAGE_STUDY)
    message = str(caught.value)
    assert "still failed after" in message and "Connection refused" in message
    assert message.endswith("(workers ride out an outage for $LRTUNE_STORAGE_OUTAGE = 0.5 s)")
    assert isinstance(caught.value.__cause__, sqlalchemy.exc.OperationalError)

    proxy.up()  # the server is back: the trial the stopped worker left is run again
    states = [t.state for t in optuna.load_study(study_name=name, storage=url).trials]
    assert states[1] is optuna.trial.TrialState.RUNNING
    lrtune.tune(own_loop, storage=url, study_name=name, **OUTAGE_STUDY)
    result, expected = audit(url, name), fault_free(own_loop, **OUTAGE_STUDY)
    assert [t.number for t in result.lost] == [1]
    assert result.finished == expected.finished and result.best == expected.best
    assert TrialState.RUNNING not in [t.state for t in lrtune.load_study(name, url).trials]
