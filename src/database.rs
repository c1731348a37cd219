//! The database: created when missing, migrated at start, reached through one pool.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool, Postgres};
use tokio::time::Instant;

use crate::config::Settings;
use crate::metrics::PoolWait;

/// Every migration of this binary: an up and a down file per version (see README, "Migrations").
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The session setting a down migration reads before discarding what the lower version cannot
/// hold; without it, such a down refuses (raises) and changes nothing.
pub const REVERT_DISCARDS_SETTING: &str = "moncreneau.revert_discards";

/// The migrations of this binary up to `version` included: a database migrated by it is at
/// that version, as one migrated by the release that shipped it. For tests and the benchmark.
pub fn migrator_up_to(version: i64) -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            MIGRATOR
                .iter()
                .filter(|migration| migration.version <= version)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}

/// The versions of this binary's migrations, in order.
pub fn versions() -> Vec<i64> {
    MIGRATOR
        .iter()
        .filter(|migration| migration.migration_type.is_up_migration())
        .map(|migration| migration.version)
        .collect()
}

/// Connects (waiting at most `database_connect_timeout`), creates the database if it does not
/// exist, and applies pending migrations.
pub async fn connect_and_migrate(settings: &Settings) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(&settings.database_url)
        .context("DATABASE_URL is not a valid postgres:// URL")?;
    let deadline = Instant::now() + settings.database_connect_timeout;
    ensure_database_exists(&options, deadline).await?;
    // Migrations run on a connection of their own, free of the request bounds below: a schema
    // change on a large table may rightly take longer than any request should.
    let mut migrating = options
        .connect()
        .await
        .context("cannot connect to the database")?;
    MIGRATOR
        .run(&mut migrating)
        .await
        .context("cannot apply migrations")?;
    migrating.close().await.ok();
    Ok(pool(options, settings))
}

/// Reverts the last `steps` applied migrations, newest first, all in one transaction, and
/// answers the versions reverted. A down that would lose data the lower version cannot hold
/// refuses (its error says what and how many) unless `discard` is set; then nothing changed, not
/// even the steps before it. The bookkeeping is sqlx's own (`Migrator::undo`): run the down file,
/// delete the version's row, under the migrator's advisory lock.
pub async fn revert(settings: &Settings, steps: u32, discard: bool) -> anyhow::Result<Vec<i64>> {
    use sqlx::migrate::Migrate;

    let options = PgConnectOptions::from_str(&settings.database_url)
        .context("DATABASE_URL is not a valid postgres:// URL")?;
    let mut connection = options
        .connect()
        .await
        .context("cannot connect to the database")?;
    connection
        .lock()
        .await
        .context("cannot take the migration lock")?;
    if let Some(version) = connection.dirty_version().await? {
        anyhow::bail!("migration {version} is partially applied; repair the database first");
    }
    let mut applied: Vec<i64> = connection
        .list_applied_migrations()
        .await
        .context("cannot read the applied migrations (is this database migrated at all?)")?
        .into_iter()
        .map(|migration| migration.version)
        .collect();
    applied.sort_unstable_by(|a, b| b.cmp(a));
    let steps = usize::try_from(steps).unwrap_or(usize::MAX);
    if steps > applied.len() {
        anyhow::bail!(
            "cannot revert {steps} migrations: only {} are applied",
            applied.len()
        );
    }
    let mut downs = Vec::new();
    for version in applied.iter().take(steps) {
        let down = MIGRATOR
            .iter()
            .find(|m| m.version == *version && m.migration_type.is_down_migration())
            .with_context(|| {
                format!("migration {version} has no down file in this binary: revert with the binary that applied it")
            })?;
        downs.push(down);
    }
    let mut transaction = connection.begin().await?;
    if discard {
        // Local to the transaction: it ends with it.
        sqlx::query("SELECT set_config($1, 'on', true)")
            .bind(REVERT_DISCARDS_SETTING)
            .execute(&mut *transaction)
            .await?;
    }
    for down in &downs {
        sqlx::raw_sql(&down.sql)
            .execute(&mut *transaction)
            .await
            .map_err(|error| describe_revert_error(down.version, error))?;
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
            .bind(down.version)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    connection.unlock().await.ok();
    connection.close().await.ok();
    let reverted: Vec<i64> = downs.iter().map(|down| down.version).collect();
    for version in &reverted {
        tracing::info!(version, "migration reverted");
    }
    Ok(reverted)
}

/// The database's own words (message and hint) for a refused down, not only sqlx's summary.
fn describe_revert_error(version: i64, error: sqlx::Error) -> anyhow::Error {
    if let sqlx::Error::Database(database) = &error {
        let hint = database
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .and_then(|pg| pg.hint())
            .map(|hint| format!(" ({hint})"))
            .unwrap_or_default();
        return anyhow::anyhow!(
            "cannot revert migration {version}, nothing was changed: {}{hint}",
            database.message()
        );
    }
    anyhow::Error::new(error).context(format!("cannot revert migration {version}"))
}

/// The request pool. Every wait is bounded, so that a stalled statement, a lock held by a
/// stalled process or link, or a dead link cannot hold a connection, a lock or a request for
/// longer than the settings say: Postgres ends a statement, a lock wait or an idle transaction
/// past its bound (and so releases that transaction's locks), and a connection whose link does
/// not answer is dropped instead of pinning a place in the pool.
///
/// Round trips: a statement on the pool costs itself plus the one check sqlx always makes when a
/// connection comes back (a `Sync`, which also settles what a cancelled request left open); the
/// writers of bookings skip that one by keeping their connection between writes
/// (`kept_connection`). Two more checks used to surround it, and are now made only when they can
/// find something:
/// - on release, answers still owed by the server (a request cancelled mid-statement) are
///   drained within the statement bound, else the connection is closed; a connection whose last
///   statement completed owes nothing, and this costs no round trip;
/// - on acquire, a connection idle for longer than [`TRUSTED_IDLE`] is pinged (within the same
///   bound) before it is handed out; one released a moment ago was checked by that release.
///
/// A link that stalls in the instant between a completed statement and sqlx's own release check
/// holds that one connection until the link answers or dies; every other stall is bounded.
///
/// Plans: each statement (sqlx prepares them all) is planned once per connection, for any
/// values (`plan_cache_mode = force_generic_plan`). Left to choose, Postgres plans again on every
/// execution whenever the plan for any values looks dearer than one for the values at hand,
/// and skew makes that permanent: once one department holds most of the appointments, every
/// booking and availability statement was planned anew, and planning cost more than running.
/// The statements of the service all reach their rows through a key or an index range that
/// suits any value. And no statement is compiled to machine code (`jit = off`): a plan for any
/// values may be estimated dear enough for Postgres to compile it at each execution (the
/// capacity trigger's, once a department holds a hundred thousand appointments: 80 ms of
/// compiling for a statement that runs in a tenth of a millisecond), and no statement of the
/// service runs long enough to repay it.
pub fn pool(options: PgConnectOptions, settings: &Settings) -> PgPool {
    let millis = |bound: Duration| bound.as_millis().to_string();
    let options = options.options([
        (
            "statement_timeout",
            millis(settings.database_statement_timeout),
        ),
        ("lock_timeout", millis(settings.database_lock_timeout)),
        ("plan_cache_mode", PLAN_CACHE_MODE.to_owned()),
        ("jit", "off".to_owned()),
        (
            "idle_in_transaction_session_timeout",
            millis(settings.database_idle_in_transaction_timeout),
        ),
    ]);
    let bound = settings.database_statement_timeout;
    PgPoolOptions::new()
        .max_connections(settings.database_max_connections)
        .acquire_timeout(settings.database_acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(move |connection, meta| {
            Box::pin(async move {
                if meta.idle_for <= TRUSTED_IDLE {
                    return Ok(true);
                }
                within(bound, connection.ping()).await.map(|()| true)
            })
        })
        .after_release(move |connection, _| {
            // `flush` waits only for answers still owed (none after a completed statement):
            // what a cancelled request left in flight is read off here, within the bound.
            Box::pin(async move { within(bound, connection.flush()).await.map(|()| true) })
        })
        .connect_lazy_with(options)
}

/// How the pool's connections plan a prepared statement: once, for any values (see [`pool`]).
pub const PLAN_CACHE_MODE: &str = "force_generic_plan";

/// How long a released connection is trusted without a check: its release checked it, and a
/// link broken since then fails the statement, which closes the connection (never reused).
pub const TRUSTED_IDLE: Duration = Duration::from_secs(1);

/// `check`, as an error past `bound`: the connection is then closed, not pooled.
async fn within(
    bound: Duration,
    check: impl std::future::Future<Output = Result<(), sqlx::Error>>,
) -> Result<(), sqlx::Error> {
    tokio::time::timeout(bound, check)
        .await
        .unwrap_or_else(|_| {
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the database connection did not answer within the statement bound",
            )))
        })
}

/// A connection of the pool, the wait for it measured: sqlx tells how many connections are open
/// and idle, not how many callers wait. The key lookup that starts every authenticated request
/// takes its connection here, so an exhausted pool shows first in these metrics.
pub async fn acquire(pool: &PgPool) -> Result<PoolConnection<Postgres>, sqlx::Error> {
    let _wait = PoolWait::begin();
    pool.acquire().await
}

async fn ensure_database_exists(
    options: &PgConnectOptions,
    deadline: Instant,
) -> anyhow::Result<()> {
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let maintenance = options.clone().database("postgres");
    let mut connection = loop {
        match tokio::time::timeout_at(deadline, maintenance.connect()).await {
            Ok(Ok(connection)) => break connection,
            Ok(Err(error)) if Instant::now() + Duration::from_millis(250) < deadline => {
                tracing::warn!("database not reachable yet: {error}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok(Err(error)) => {
                return Err(anyhow::Error::new(error).context("database unreachable, giving up"))
            }
            Err(_) => anyhow::bail!("database unreachable within the start-up timeout, giving up"),
        }
    };
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut connection)
            .await?;
    if !exists {
        let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&statement).execute(&mut connection).await {
            Ok(_) => tracing::info!(database = %name, "created the database"),
            // Another process created it meanwhile.
            Err(sqlx::Error::Database(error))
                if matches!(error.code().as_deref(), Some("42P04") | Some("23505")) => {}
            Err(error) => {
                return Err(anyhow::Error::new(error).context("cannot create the database"))
            }
        }
    }
    connection.close().await.ok();
    Ok(())
}

/// Whether every migration this binary knows is applied (for `/ready`).
pub async fn is_ready(pool: &PgPool) -> bool {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Result<Option<i64>, _> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await;
    matches!(applied, Ok(Some(version)) if version >= latest)
}
