//! `strata rm URL [-r] [--yes]`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};
use futures::{StreamExt, TryStreamExt};
use strata_store::{Store, StoreUrl};

use crate::args::RmArgs;
use crate::output;
use crate::settings::Settings;

pub async fn run(args: &RmArgs, s: &Settings) -> Result<()> {
    let url = StoreUrl::parse(&args.url)?;
    let store = Store::open(&url, &s.store)?;
    let keys: Vec<String> = if args.recursive {
        let objects = store.list(url.key()).await?;
        if objects.is_empty() {
            return Err(strata_store::StoreError::empty_prefix(&url).into());
        }
        let bytes: u64 = objects.iter().map(|o| o.size).sum();
        if !args.yes
            && !confirm(&format!(
                "delete {} object(s), {}, under {url}?",
                objects.len(),
                strata_units::format_size(bytes)
            ))?
        {
            bail!("nothing deleted (answer y, or pass --yes)");
        }
        objects.into_iter().map(|o| o.key).collect()
    } else {
        if url.is_prefix_syntax() {
            bail!("{url} is a prefix; use -r to delete what is under it");
        }
        // Deleting a missing object succeeds on S3; say so rather than pretend.
        store.head(url.key()).await?;
        vec![url.key().to_string()]
    };
    let deleted: Vec<String> = futures::stream::iter(keys)
        .map(|k| {
            let store = &store;
            async move { store.delete(&k).await.map(|_| k) }
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    if s.json {
        let urls: Vec<String> = deleted.iter().map(|k| store.url(k).to_string()).collect();
        output::json(&serde_json::json!({"deleted": urls}));
    } else {
        eprintln!("deleted {} object(s)", deleted.len());
    }
    Ok(())
}

/// Asks on the terminal; without one, refuses (scripts pass --yes).
pub fn confirm(question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("{question} Refusing without a terminal to ask on; pass --yes");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}
