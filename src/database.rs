//! The database: created when missing, migrated at start, reached through one pool.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool, Postgres};
use tokio::time::Instant;

use crate::config::Settings;
use crate::metrics::PoolWait;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

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

/// The request pool. Every wait is bounded, so that a stalled statement, a lock held by a
/// stalled process or link, or a dead link cannot hold a connection, a lock or a request for
/// longer than the settings say: Postgres ends a statement, a lock wait or an idle transaction
/// past its bound (and so releases that transaction's locks), and a connection whose link does
/// not answer when it is handed back is dropped instead of pinning a place in the pool.
pub fn pool(options: PgConnectOptions, settings: &Settings) -> PgPool {
    let millis = |bound: Duration| bound.as_millis().to_string();
    let options = options.options([
        (
            "statement_timeout",
            millis(settings.database_statement_timeout),
        ),
        ("lock_timeout", millis(settings.database_lock_timeout)),
        (
            "idle_in_transaction_session_timeout",
            millis(settings.database_idle_in_transaction_timeout),
        ),
    ]);
    let release_bound = settings.database_statement_timeout;
    PgPoolOptions::new()
        .max_connections(settings.database_max_connections)
        .acquire_timeout(settings.database_acquire_timeout)
        .after_release(move |connection, _| {
            Box::pin(async move {
                // Also rolls back what a cancelled request left open.
                match tokio::time::timeout(release_bound, connection.ping()).await {
                    Ok(answered) => answered.map(|()| true),
                    Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the connection did not answer when released",
                    ))),
                }
            })
        })
        .connect_lazy_with(options)
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
