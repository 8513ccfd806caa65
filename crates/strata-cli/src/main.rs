//! The `strata` command. Thin: it parses flags into settings once (`settings.rs`), calls the
//! libraries, prints, and maps errors to exit codes that scripts can rely on:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other error |
//! | 2 | bad command-line usage |
//! | 3 | not found (object, bucket, prefix, file) |
//! | 4 | permission denied or bad credentials |
//! | 5 | the store or network failed after retries (5xx, throttling, resets, unreachable) |
//! | 6 | invalid input: URL, key, configuration |
//! | 7 | precondition failed (the object changed while read, or already exists) |
//! | 130 | interrupted (Ctrl-C) |

mod args;
mod commands;
mod output;
mod settings;

use std::process::ExitCode;

use clap::Parser;
use strata_store::{ErrorKind, StoreError};

use crate::args::{Cli, Command};
use crate::settings::Settings;

fn main() -> ExitCode {
    // Stop quietly when the reader of our output goes away (`strata ls … | head`), as Unix
    // tools do. Not by restoring SIGPIPE's default action: that is process-wide, and a write
    // to any closed socket (a server or the link emulator dropping a connection) would kill
    // the process with it. SIGPIPE stays ignored (Rust's default); a print that meets a closed
    // stdout panics, and this hook turns that one panic into the exit status a shell expects.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let json = cli.global.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            let msg = one_line(&e);
            if code != 130 {
                eprintln!("strata: error: {msg}");
            }
            if json
                && e.downcast_ref::<Reported>().is_none()
                && e.downcast_ref::<output::PartlySkipped>().is_none()
            {
                output::json(&serde_json::json!({"error": msg, "exit_code": code}));
            }
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_args(&cli.global)?;
    #[cfg(feature = "testkit")]
    if let Command::Bench(b) = &cli.command {
        // Benchmarks start their own servers and runtimes.
        return commands::bench::run(b, &settings);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let work = async {
            match &cli.command {
                Command::Cp(a) => commands::cp::run(a, &settings).await,
                Command::Ls(a) => commands::ls::ls(a, &settings).await,
                Command::Du(a) => commands::ls::du(a, &settings).await,
                Command::Cat(a) => commands::cat::cat(a, &settings).await,
                Command::Stat(a) => commands::cat::stat(a, &settings).await,
                Command::Rm(a) => commands::rm::run(a, &settings).await,
                #[cfg(feature = "testkit")]
                Command::Demo(a) => commands::demo::run(a, &settings).await,
                #[cfg(feature = "testkit")]
                Command::TestS3Server(a) => commands::test_server::run(a).await,
                Command::Warm(a) => commands::cache::warm(a, &settings).await,
                Command::Cache(c) => commands::cache::run(c, &settings).await,
                Command::Pack(a) => commands::dataset::pack(a, &settings).await,
                Command::Index(a) => commands::dataset::index(a, &settings).await,
                Command::Dataset(c) => commands::dataset::run(c, &settings).await,
                Command::Ckpt(c) => commands::ckpt::run(c, &settings).await,
                Command::Models(c) => commands::models::run(c, &settings).await,
                Command::Plan(c) => commands::plan::run(c, &settings).await,
                Command::Probe(a) => commands::plan::probe(a, &settings).await,
                Command::Serve(a) => commands::serve::run(a, &settings).await,
                #[cfg(feature = "testkit")]
                Command::Bench(_) => unreachable!("handled above"),
            }
        };
        tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => {
                // Dropping the work aborts multipart uploads on spawned tasks; give them a
                // moment to reach the store before the runtime goes away.
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                Err(anyhow::Error::new(Interrupted))
            }
        }
    })
}

#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// A failure whose command already printed its result, which says what failed (with
/// `--json`, the one JSON document on stdout): the message goes to stderr and the exit code
/// is 1, with no second document.
#[derive(Debug)]
pub(crate) struct Reported(pub(crate) String);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Reported {}

fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<Interrupted>().is_some() {
        return 130;
    }
    if e.downcast_ref::<output::PartlySkipped>().is_some() {
        return 8;
    }
    if let Some(d) = e
        .chain()
        .find_map(|c| c.downcast_ref::<strata_dataset::DatasetError>())
    {
        use strata_dataset::DatasetError as D;
        match d {
            D::Store(_) => {}
            D::Input { .. }
            | D::Shard { .. }
            | D::Sample { .. }
            | D::Manifest { .. }
            | D::Invalid(_) => return 6,
            _ => return 1,
        }
    }
    if let Some(c) = e
        .chain()
        .find_map(|c| c.downcast_ref::<strata_ckpt::CkptError>())
    {
        use strata_ckpt::CkptError as C;
        // A failed drain carries its cause.
        let mut c = c;
        while let C::Drain { source, .. } = c {
            c = source;
        }
        match c {
            C::Store(s) => return store_code(s),
            C::NotFound { .. } => return 3,
            C::Exists { .. } => return 7,
            C::Invalid(_) | C::Manifest { .. } => return 6,
            _ => return 1,
        }
    }
    if let Some(m) = e
        .chain()
        .find_map(|c| c.downcast_ref::<strata_models::ModelError>())
    {
        use strata_models::ModelError as M;
        match m {
            M::Store(s) => return store_code(s),
            M::Empty(_) | M::NotCached(_) => return 3,
            M::Header { .. } | M::NoTensors { .. } | M::Corrupt { .. } => return 6,
            _ => return 1,
        }
    }
    let store = e
        .chain()
        .find_map(|c| c.downcast_ref::<StoreError>())
        .or_else(|| {
            e.chain()
                .find_map(|c| match c.downcast_ref::<strata_dataset::DatasetError>() {
                    Some(strata_dataset::DatasetError::Store(s)) => Some(s),
                    _ => None,
                })
        });
    if let Some(d) = e
        .chain()
        .find_map(|c| c.downcast_ref::<strata_daemon_client::ClientError>())
    {
        use strata_daemon_client::ClientError as D;
        return match d {
            D::Connect { .. } | D::Http { .. } => 5,
            D::Address { .. } => 6,
            D::Status { status, .. } => match status.as_u16() {
                404 => 3,
                401 | 403 => 4,
                412 => 7,
                400 | 416 => 6,
                _ => 5,
            },
            _ => 1,
        };
    }
    if let Some(c) = e
        .chain()
        .find_map(|c| c.downcast_ref::<strata_config::ConfigError>())
    {
        let _ = c;
        return 6;
    }
    let Some(store) = store else {
        return 1;
    };
    store_code(store)
}

fn store_code(store: &StoreError) -> u8 {
    match store.kind() {
        ErrorKind::NotFound => 3,
        ErrorKind::PermissionDenied | ErrorKind::Unauthenticated => 4,
        ErrorKind::Throttled | ErrorKind::Server | ErrorKind::Network => 5,
        ErrorKind::InvalidInput => 6,
        ErrorKind::Precondition | ErrorKind::AlreadyExists => 7,
        _ => 1,
    }
}

/// The error and its causes on one line, without repeating a cause already included.
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out.replace('\n', " ")
}
