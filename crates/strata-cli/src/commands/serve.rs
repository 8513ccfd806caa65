//! `strata serve`: the node daemon.

use anyhow::{Context, Result};
use strata_daemon::{DaemonConfig, DaemonFlags, Node, Server};

use crate::args::ServeArgs;
use crate::settings::Settings;

pub async fn run(a: &ServeArgs, s: &Settings) -> Result<()> {
    let flags = DaemonFlags {
        listen: a.listen.clone(),
        socket: a.socket.clone(),
        buckets: a.buckets.clone(),
        local_roots: a.local_roots.clone(),
    };
    let cfg = DaemonConfig::resolve(&s.sources, &flags)?;
    if a.print_config {
        print!("{}", cfg.to_toml());
        return Ok(());
    }
    let budget = cfg.memory_budget();
    let node = Node::open(cfg).context("opening the node's cache")?;
    let server = Server::start(node.clone())
        .await
        .with_context(|| format!("listening on {}", node.config.listen))?;
    let base = format!("http://{}", server.addr);
    if s.json {
        crate::output::json(&serde_json::json!({
            "listen": server.addr.to_string(),
            "socket": server.socket.as_ref().map(|p| p.display().to_string()),
            "cache": node.config.cache.dir.display().to_string(),
            "memory_budget": budget,
            "pid": std::process::id(),
        }));
    } else {
        eprintln!("strata serve: listening on {base}");
        if let Some(p) = &server.socket {
            eprintln!("  socket     unix:{}", p.display());
        }
        eprintln!("  cache      {}", node.config.cache.dir.display());
        eprintln!("  dashboard  {base}/dashboard");
        eprintln!("  workbench  {base}/workbench");
        eprintln!("  metrics    {base}/metrics");
        for (name, url) in &node.config.buckets {
            eprintln!("  s3 bucket  {name} → {url}  (endpoint {base})");
        }
        eprintln!(
            "  memory     at most {} by construction",
            strata_units::format_size(budget)
        );
        eprintln!("clients: export STRATA_DAEMON={base}");
    }
    // Runs until interrupted (Ctrl-C or SIGTERM); block files written behind are flushed.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = std::future::pending::<()>() => {}
    }
    server.stop();
    node.cache.flush().await;
    Ok(())
}
