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
    /// Apply migrations and exit.
    Migrate,
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
