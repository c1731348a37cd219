//! The request pool's connections, as the server opens them.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;

use crate::helpers::{test_settings, TestDatabase};

/// A pool on `database` as the server opens it.
fn service_pool(database: &TestDatabase) -> PgPool {
    let settings = test_settings(&database.url());
    let options = PgConnectOptions::from_str(&database.url()).unwrap();
    moncreneau::database::pool(options, &settings)
}

/// A prepared statement is planned once per connection, for any values: Postgres would
/// otherwise plan each of the first five executions for its values, and keep doing so for
/// every later one whenever skew makes such plans look cheaper (see `database::pool`).
#[tokio::test]
async fn a_statement_is_planned_once_for_any_values() {
    let database = TestDatabase::create().await;
    let pool = service_pool(&database);
    let mut connection = pool.acquire().await.unwrap();
    let statement = "SELECT count(*) FROM appointments WHERE department_id = $1 /* planned */";
    for department in 0..12_i64 {
        let counted: i64 = sqlx::query_scalar(statement)
            .bind(department)
            .fetch_one(&mut *connection)
            .await
            .unwrap();
        assert_eq!(counted, 0);
    }
    let (generic, custom): (i64, i64) = sqlx::query_as(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements
          WHERE statement LIKE '%/* planned */'",
    )
    .fetch_one(&mut *connection)
    .await
    .unwrap();
    assert_eq!((generic, custom), (12, 0));
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(&mut *connection)
        .await
        .unwrap();
    assert_eq!(mode, moncreneau::database::PLAN_CACHE_MODE);
}

/// No statement is compiled to machine code: a plan for any values can be estimated dear
/// enough to be compiled at every execution, for far longer than it runs.
#[tokio::test]
async fn no_statement_is_compiled_to_machine_code() {
    let database = TestDatabase::create().await;
    let pool = service_pool(&database);
    // A plan estimated far above the default threshold of compilation (jit_above_cost).
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT count(*) FROM generate_series(1, 100000000) a, generate_series(1, 1000) b",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(!plan.contains("JIT"), "{plan}");
    let jit: String = sqlx::query_scalar("SHOW jit")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(jit, "off");
}
