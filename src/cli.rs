//! The binary's command line: `serve` (default), `migrate`, `openapi`, `admin create-org`.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "moncreneau", version, about = "Appointment booking REST API")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database if missing, apply migrations, serve the API (the default).
    Serve,
    /// Apply migrations and exit; with --revert, step back instead.
    ///
    /// A step back runs the migration's down file in one transaction. A down refuses, exits
    /// non-zero and changes nothing when it would lose data the lower version cannot hold
    /// (workers, webhook endpoints, idempotency keys, organizations, or slots above capacity);
    /// --discard lets it go on and discard them, as each down file and README say.
    Migrate {
        /// Revert the last N applied migrations (default 1), newest first, instead of applying.
        #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "1")]
        revert: Option<u32>,
        /// With --revert: discard what the lower version cannot hold instead of refusing.
        #[arg(long, requires = "revert")]
        discard: bool,
    },
    /// Print the OpenAPI document the code describes (`moncreneau openapi > openapi.json`).
    Openapi,
    /// Operator actions, straight on the database.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Create an organization; prints its id and its two admin keys (shown once) as JSON.
    CreateOrg {
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 0)]
        live_credits: i64,
    },
}
