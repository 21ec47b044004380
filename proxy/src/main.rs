//! The `gatehouse` command: run the filtering proxy, manage its CA, check a policy, explain
//! a decision, serve Squid as a helper.

mod admin;
mod body;
mod ca;
mod certs;
mod cli;
mod content;
mod downloads;
mod embedded;
mod error;
mod events;
mod handler;
mod handshakes;
mod identity;
mod intercept;
mod limits;
mod metrics;
mod pages;
mod safeguard;
mod safesearch;
mod server;
mod settings;
mod upstream;
mod users;
mod warn;

use clap::{Parser, Subcommand};
use gatehouse_rules::train::Options;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "gatehouse", version, about = "A web filter for schools")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the filtering proxy (default: the embedded policy on 127.0.0.1:3128).
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The interception CA that school devices trust.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Add or replace a proxy login (the password is read from the first line of stdin).
    UserAdd {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The role the login gets.
        #[arg(long)]
        role: String,
        name: String,
    },
    /// Admin page accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Validate a policy and every list it names; print what was loaded.
    Check {
        /// The policy file (default: the embedded example policy and starter lists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the load report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print, as JSON, what the policy decides for a URL (or a CONNECT `host:port`) and why.
    Explain {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The role to decide for (pupil, staff, guest, ...); default: the role the proxy
        /// would find for --user and --client (the people table, then the network).
        #[arg(long)]
        role: Option<String>,
        /// When the request is made (RFC 3339, e.g. 2026-11-23T12:30:00Z); default now.
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        client: Option<std::net::IpAddr>,
        #[arg(long, default_value = "GET")]
        method: String,
        /// `https://host/path?query`, or `host:port` for a tunnel that is not decrypted.
        url: String,
    },
    /// Score the policy's themes on labelled searches (tab-separated files or folders of
    /// them: lang, theme, alert|lowered|quiet, query, source): recall, precision and false
    /// alerts per theme and language.
    EvalSearches {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The role the searches are made as.
        #[arg(long, default_value = "pupil")]
        role: String,
        /// Also print every missed search and every false alert.
        #[arg(long)]
        list: bool,
        #[arg(required = true)]
        sets: Vec<PathBuf>,
    },
    /// Learn the theme model's weights from labelled searches (the format of eval-searches)
    /// and write them where the policy loads them (`themes/_model/weights.tsv`).
    TrainThemes {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The weights file to write.
        #[arg(long)]
        out: PathBuf,
        /// Passes over the searches.
        #[arg(long, default_value_t = Options::default().epochs)]
        epochs: usize,
        /// L1 penalty (higher: fewer features carry weight; a set of a few hundred
        /// searches wants well under 1).
        #[arg(long, default_value_t = Options::default().l1)]
        l1: f32,
        /// L2 penalty (higher: smaller weights).
        #[arg(long, default_value_t = Options::default().l2)]
        l2: f32,
        /// Step size.
        #[arg(long, default_value_t = Options::default().rate)]
        rate: f32,
        /// Keep features seen in at least this many searches.
        #[arg(long, default_value_t = Options::default().min_count)]
        min_count: usize,
        /// The score a theme needs to fire (0 is even odds; higher alerts less).
        #[arg(long, default_value_t = Options::default().threshold, allow_negative_numbers = true)]
        threshold: f32,
        /// An evaluation set (file or folder) whose searches are left out of training, so
        /// that it stays unseen (repeatable).
        #[arg(long)]
        exclude: Vec<PathBuf>,
        #[arg(required = true)]
        sets: Vec<PathBuf>,
    },
    /// Read the people table (`[identity.people] csv`, the MIS export) as the proxy
    /// would: people, leavers, memory and time; `--find` people by name or account.
    People {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        find: Option<String>,
    },
    /// Safeguarding reports from the event store.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Print every stored record of one user as JSON lines (a subject access request).
    ExportUser {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        user: String,
    },
    /// Answer Squid's url_rewrite_program helper protocol on stdin/stdout.
    SquidHelper {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Role for clients outside every configured network (default: refuse them).
        #[arg(long)]
        role: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ReportCommand {
    /// The daily safeguarding digest of one day, grouped by theme and by person.
    Daily {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The school day (YYYY-MM-DD, in the school's time zone).
        #[arg(long)]
        date: String,
        /// One site (default: all sites).
        #[arg(long)]
        site: Option<String>,
        /// text, html or csv.
        #[arg(long, default_value = "text")]
        format: String,
    },
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Add an account, or set a new password and role for one (the password is read from the
    /// first line of stdin; at least 10 characters).
    Add {
        #[arg(long)]
        config: Option<PathBuf>,
        /// it (edits policy), dsl (triages alerts), or viewer (reads only).
        #[arg(long)]
        role: String,
        name: String,
    },
    /// List the accounts.
    List {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Disable an account: it cannot sign in, and its open sessions end.
    Disable {
        #[arg(long)]
        config: Option<PathBuf>,
        name: String,
    },
    /// Enable a disabled account again.
    Enable {
        #[arg(long)]
        config: Option<PathBuf>,
        name: String,
    },
    /// Remove an account (the audit trail keeps what it did).
    Remove {
        #[arg(long)]
        config: Option<PathBuf>,
        name: String,
    },
    /// Give an account a second factor (a new TOTP secret for an authenticator app, printed
    /// once), or take it away with --off.
    Totp {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        off: bool,
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum CaCommand {
    /// Create the CA (ECDSA P-256) in the data folder; refuses to overwrite one.
    Init {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the CA certificate (PEM) for rolling out to devices.
    Export {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    private_files();
    let args = Args::parse();
    let result = match args.command {
        Command::Run { config } => run_proxy(config.as_deref()),
        Command::Ca { command } => ca_command(command),
        Command::UserAdd { config, role, name } => user_add(config.as_deref(), &role, &name),
        Command::Admin { command } => admin_command(command),
        Command::Check { config, json } => cli::check::run(config.as_deref(), json),
        Command::EvalSearches {
            config,
            role,
            list,
            sets,
        } => cli::eval_searches::run(cli::eval_searches::Request {
            config: config.as_deref(),
            role: &role,
            list,
            sets: &sets,
        }),
        Command::TrainThemes {
            config,
            out,
            epochs,
            l1,
            l2,
            rate,
            min_count,
            threshold,
            exclude,
            sets,
        } => cli::train_themes::run(cli::train_themes::Request {
            config: config.as_deref(),
            out: &out,
            options: Options {
                epochs,
                l1,
                l2,
                rate,
                min_count,
                threshold,
                ..Default::default()
            },
            sets: &sets,
            exclude: &exclude,
        }),
        Command::Explain {
            config,
            role,
            at,
            user,
            client,
            method,
            url,
        } => cli::explain::run(cli::explain::Request {
            config: config.as_deref(),
            role: role.as_deref(),
            at: at.as_deref(),
            user: user.as_deref(),
            client,
            method: &method,
            url: &url,
        }),
        Command::People { config, find } => cli::people::run(config.as_deref(), find.as_deref()),
        Command::Report {
            command:
                ReportCommand::Daily {
                    config,
                    date,
                    site,
                    format,
                },
        } => cli::report::daily(config.as_deref(), &date, site.as_deref(), &format),
        Command::ExportUser { config, user } => cli::report::export_user(config.as_deref(), &user),
        Command::SquidHelper { config, role } => {
            cli::squid_helper::run(config.as_deref(), role.as_deref())
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            cli::eprint(&format!("gatehouse: {e:#}"));
            ExitCode::from(2)
        }
    }
}

fn run_proxy(config: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    tune_malloc();
    init_logging();
    let file = embedded::config_file(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(server::run(file, config.is_none()))?;
    Ok(ExitCode::SUCCESS)
}

/// `gatehouse admin disable|enable NAME`: audited, and said.
fn set_disabled(db: &gatehouse_dashboard::Db, name: &str, disable: bool) -> anyhow::Result<()> {
    if !gatehouse_dashboard::accounts::set_disabled(db, name, disable)? {
        anyhow::bail!("no admin account is called {name:?}");
    }
    let (action, after) = if disable {
        ("account-disable", "disabled")
    } else {
        ("account-enable", "enabled")
    };
    gatehouse_dashboard::audit::record(db, "command line", action, name, "", after)?;
    cli::print(&format!("Admin account {name} {after}.\n"));
    Ok(())
}

/// Everything Gatehouse creates (the events log, the spill file, the databases, the edits
/// file) is readable by its owner only, however it is started; the CA certificate, which
/// devices need, is made readable by everyone explicitly.
#[expect(unsafe_code, reason = "umask takes and returns a plain integer")]
fn private_files() {
    // SAFETY: umask only swaps the process's file mode creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// The running proxy's log: one line per event worth a person's attention, to stderr
/// (journald keeps it under systemd); `GATEHOUSE_LOG` sets the level (`info` by default,
/// e.g. `GATEHOUSE_LOG=debug`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
}

/// glibc gives each thread that allocates its own arena (up to 8 per core), and memory freed
/// in one is not reused by another: with the async workers, the event writer, the store and
/// delivery threads and the blocking pool that is tens of MiB of resident memory for nothing.
/// Two arenas serve a proxy on a few cores. And glibc raises its mmap threshold each time a
/// large block is freed, so after a while the store's batches (a few MiB each) come from
/// the heap, where freeing them leaves holes that are never given back; a fixed threshold
/// keeps them in mappings of their own, returned to the system when freed. Called before
/// any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(
    unsafe_code,
    reason = "mallopt with plain integers, before any other thread exists"
)]
fn tune_malloc() {
    // SAFETY: mallopt takes plain integers; nothing else allocates concurrently yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

fn ca_command(command: CaCommand) -> anyhow::Result<ExitCode> {
    let (CaCommand::Init { config } | CaCommand::Export { config }) = &command;
    let file = embedded::config_file(config.as_deref())?;
    let dir = settings::ProxySettings::from_config(&file)?.data_dir(&file);
    match command {
        CaCommand::Init { .. } => {
            ca::init(&dir, &file.config.school.name)?;
            cli::print(&format!(
                "Created {} and {} (key readable by its owner only).\n",
                ca::cert_path(&dir).display(),
                ca::key_path(&dir).display()
            ));
        }
        CaCommand::Export { .. } => cli::print(&ca::export(&dir)?),
    }
    Ok(ExitCode::SUCCESS)
}

fn user_add(config: Option<&std::path::Path>, role: &str, name: &str) -> anyhow::Result<ExitCode> {
    let file = embedded::config_file(config)?;
    let snap = gatehouse_rules::compile(&file)?.snapshot;
    if snap.role_id(role).is_none() {
        anyhow::bail!("--role {role:?} is not a role of this policy");
    }
    let settings = settings::ProxySettings::from_config(&file)?;
    let path = settings.data_dir(&file).join(&settings.users_file);
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    users::add(&path, name, role, password.trim_end_matches(['\r', '\n']))?;
    cli::print(&format!(
        "{name} ({role}) saved in {}; restart or reload the proxy to use it.\n",
        path.display()
    ));
    Ok(ExitCode::SUCCESS)
}

fn admin_command(command: AdminCommand) -> anyhow::Result<ExitCode> {
    let (AdminCommand::Add { config, .. }
    | AdminCommand::List { config }
    | AdminCommand::Disable { config, .. }
    | AdminCommand::Enable { config, .. }
    | AdminCommand::Remove { config, .. }
    | AdminCommand::Totp { config, .. }) = &command;
    let file = embedded::config_file(config.as_deref())?;
    let dir = settings::ProxySettings::from_config(&file)?.data_dir(&file);
    let db = gatehouse_dashboard::Db::open(&dir.join(admin::DB_FILE))?;
    match command {
        AdminCommand::Add { role, name, .. } => {
            let Some(role) = gatehouse_dashboard::accounts::Role::parse(&role) else {
                anyhow::bail!("--role {role:?}: choose it, dsl or viewer");
            };
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let before = gatehouse_dashboard::accounts::lookup(&db, &name)?
                .map(|(_, r)| r.name().to_owned())
                .unwrap_or_default();
            gatehouse_dashboard::accounts::add(&db, &name, role, password)?;
            gatehouse_dashboard::audit::record(
                &db,
                "command line",
                if before.is_empty() {
                    "account-add"
                } else {
                    "account-update"
                },
                &name,
                &before,
                role.name(),
            )?;
            cli::print(&format!(
                "Admin account {name} ({}) saved; sessions already open keep their old role until they end.\n",
                role.title()
            ));
        }
        AdminCommand::List { .. } => {
            for a in gatehouse_dashboard::accounts::list(&db)? {
                let state = if a.disabled { "\tdisabled" } else { "" };
                cli::print(&format!("{}\t{}\t{}{state}\n", a.name, a.role, a.created));
            }
        }
        AdminCommand::Disable { name, .. } => set_disabled(&db, &name, true)?,
        AdminCommand::Enable { name, .. } => set_disabled(&db, &name, false)?,
        AdminCommand::Remove { name, .. } => {
            if !gatehouse_dashboard::accounts::remove(&db, &name)? {
                anyhow::bail!("no admin account is called {name:?}");
            }
            gatehouse_dashboard::audit::record(
                &db,
                "command line",
                "account-remove",
                &name,
                "",
                "",
            )?;
            cli::print(&format!("Admin account {name} removed.\n"));
        }
        AdminCommand::Totp { name, off, .. } => {
            let secret = if off {
                None
            } else {
                Some(gatehouse_dashboard::totp::new_secret().ok_or_else(|| {
                    anyhow::anyhow!("the system's random number generator failed")
                })?)
            };
            if !gatehouse_dashboard::accounts::set_totp(&db, &name, secret.as_deref())? {
                anyhow::bail!("no admin account is called {name:?}");
            }
            let after = if off { "off" } else { "on (new secret)" };
            gatehouse_dashboard::audit::record(
                &db,
                "command line",
                "account-totp",
                &name,
                "",
                after,
            )?;
            match secret {
                Some(secret) => cli::print(&format!(
                    "Second factor on for {name}. Add it to an authenticator app (shown once):\n\
                     secret: {secret}\nlink:   {}\n",
                    gatehouse_dashboard::totp::link(&file.config.school.name, &name, &secret)
                )),
                None => cli::print(&format!("Second factor off for {name}.\n")),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
