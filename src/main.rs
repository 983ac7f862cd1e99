//! The `agentd` command line.

mod cli;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use cli::common::{Failure, Global};

/// agentd runs AI coding agents (Claude Code) against git repositories, one
/// hardened Docker container per execution: no network inside, the model reached
/// only through agentd's gateway (the API key never enters the sandbox), git
/// credentials kept on the host, and every container, volume and socket removed
/// afterwards.
///
/// Quick start (no API key needed):
///   agentd run --repo ./my-repo --prompt "add a greeting" \
///     --scripted-model examples/scenarios/demo.json
///
/// Options may also come from the environment (shown with each option) and from
/// a TOML file named by --config or AGENTD_CONFIG (see `agentd serve --help`).
#[derive(Debug, Parser)]
#[command(
    name = "agentd",
    version,
    about,
    long_about,
    max_term_width = 100,
    args_override_self = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(Box<cli::run::RunArgs>),
    Serve(Box<cli::serve::ServeArgs>),
    /// Apply the database migrations and exit (serve and run also do it at start).
    Migrate(cli::migrate::MigrateArgs),
    /// Build or inspect the agent image.
    #[command(subcommand)]
    Image(cli::image::ImageCommand),
    /// The scripted model server.
    #[command(subcommand)]
    Model(cli::model::ModelCommand),
    Gc(cli::gc::GcArgs),
    /// Manage a server's tenants, API keys and audit log (the admin credential).
    Admin(cli::admin::AdminArgs),
}

/// Gives the gateway, the engine client and the API room: a sandbox flooding
/// its socket must not run agentd out of descriptors (the gateway caps each
/// execution's connections too).
fn raise_open_files_limit() {
    match agentd::open_files::raise_to_hard_limit() {
        Ok(limit) => tracing::debug!(soft = limit.soft, hard = limit.hard, "open-files limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open-files limit"),
    }
}

/// Parses the command line, with a config file's values as defaults.
fn parse() -> Result<Cli, String> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = Cli::command();
    if let Some(path) = cli::config::config_path(&args) {
        command = cli::config::apply(command, &path)?;
    }
    let matches = command.get_matches_from(args);
    Cli::from_arg_matches(&matches).map_err(|e| e.to_string())
}

fn main() {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(message) => {
            eprintln!("agentd: {message}");
            std::process::exit(2);
        }
    };
    cli.global.init_logging();
    if matches!(cli.command, Command::Run(_) | Command::Serve(_)) {
        raise_open_files_limit();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("agentd: cannot start the async runtime: {error}");
            std::process::exit(1);
        }
    };
    let outcome: Result<i32, Failure> = runtime.block_on(async {
        match &cli.command {
            Command::Run(args) => cli::run::run(&cli.global, args).await,
            Command::Serve(args) => cli::serve::serve(&cli.global, args).await,
            Command::Migrate(args) => cli::migrate::migrate(&cli.global, args).await,
            Command::Image(command) => cli::image::image(&cli.global, command).await,
            Command::Model(command) => cli::model::model(command).await,
            Command::Admin(args) => cli::admin::admin(args).await,
            Command::Gc(args) => cli::gc::gc(&cli.global, args).await,
        }
    });
    let code = match outcome {
        Ok(code) => code,
        Err(failure) => {
            // An error may quote the sandbox, a remote server or a git host.
            eprintln!("agentd: {}", cli::safe_text::multi_line(&failure.message));
            failure.code
        }
    };
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    std::process::exit(code);
}
