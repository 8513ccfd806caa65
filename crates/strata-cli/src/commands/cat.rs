//! `strata cat URL` and `strata stat URL`.

use anyhow::Result;
use strata_store::{Store, StoreUrl};

use crate::args::UrlArg;
use crate::output;
use crate::settings::Settings;

pub async fn cat(args: &UrlArg, s: &Settings) -> Result<()> {
    let url = StoreUrl::parse(&args.url)?;
    let store = Store::open(&url, &s.store)?;
    let mut out = tokio::io::stdout();
    match store
        .download_to_writer(url.key(), &mut out, &s.store.transfer, None)
        .await
    {
        Ok(_) => Ok(()),
        // A closed pipe (`strata cat … | head`) is the reader's choice, not an error.
        Err(strata_store::StoreError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn stat(args: &UrlArg, s: &Settings) -> Result<()> {
    let url = StoreUrl::parse(&args.url)?;
    let store = Store::open(&url, &s.store)?;
    let info = store.head(url.key()).await?;
    if s.json {
        output::json(&serde_json::json!({
            "url": url.to_string(), "key": info.key, "size": info.size, "e_tag": info.e_tag,
            "version": info.version, "last_modified": info.last_modified.to_rfc3339(),
        }));
    } else {
        println!("url:           {url}");
        println!(
            "size:          {} ({})",
            info.size,
            strata_store::size::format_size(info.size)
        );
        println!("etag:          {}", info.e_tag.as_deref().unwrap_or("-"));
        println!("last modified: {}", info.last_modified.to_rfc3339());
        if let Some(v) = &info.version {
            println!("version:       {v}");
        }
    }
    Ok(())
}
