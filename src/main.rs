use anyhow::{bail, Context};
use clap::Parser;
use moncreneau::cli::{AdminAction, Cli, Command};
use moncreneau::config::Settings;
use moncreneau::startup::Application;
use moncreneau::{database, routes, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Needs no settings nor database: the document is derived from the code alone.
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        print!("{}", moncreneau::openapi::generate()?);
        return Ok(());
    }
    dotenvy::dotenv().ok();
    let settings = Settings::from_env()?;
    telemetry::init(settings.log_format);
    match command {
        Command::Serve => {
            let application = Application::build(settings).await?;
            application.run_until_stopped().await?;
        }
        Command::Openapi => {}
        Command::Migrate {
            revert: None,
            discard: _,
        } => {
            database::connect_and_migrate(&settings).await?;
            tracing::info!("migrations applied");
        }
        Command::Migrate {
            revert: Some(steps),
            discard,
        } => {
            let reverted = database::revert(&settings, steps, discard).await?;
            for version in reverted {
                println!("reverted {version}");
            }
        }
        Command::Admin {
            action: AdminAction::CreateOrg { name, live_credits },
        } => {
            let name = name.trim();
            if !(1..=200).contains(&name.chars().count())
                || !(0..=1_000_000).contains(&live_credits)
            {
                bail!(
                    "--name must be 1 to 200 characters and --live-credits between 0 and 1000000"
                );
            }
            let pool = database::connect_and_migrate(&settings).await?;
            let created = routes::admin::create_organization(&pool, name, live_credits)
                .await
                .map_err(|error| anyhow::anyhow!("{error:?}"))
                .context("cannot create the organization")?;
            println!("{}", serde_json::to_string_pretty(&created)?);
        }
    }
    Ok(())
}
