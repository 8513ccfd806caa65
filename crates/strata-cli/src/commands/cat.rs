//! `strata cat URL` and `strata stat URL`.

use anyhow::Result;
use strata_store::{Store, StoreUrl};

use crate::args::UrlArg;
use crate::output;
use crate::settings::Settings;

pub async fn cat(args: &UrlArg, s: &Settings) -> Result<()> {
    let url = StoreUrl::parse(&args.url)?;
    if let Some(d) = s.daemon_client()? {
        return cat_through_daemon(&d, &url).await;
    }
    let store = Store::open(&url, &s.store)?;
    let mut out = tokio::io::stdout();
    if s.read_through && url.local_path().is_none() {
        return cat_through_cache(&store, &url, s, &mut out).await;
    }
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
    if let Some(d) = s.daemon_client()? {
        let (size, etag) = d.stat(&url.to_string()).await?;
        if s.json {
            output::json(&serde_json::json!({"url": url.to_string(), "size": size, "e_tag": etag}));
        } else {
            println!("url:           {url}");
            println!(
                "size:          {size} ({})",
                strata_store::size::format_size(size)
            );
            println!("etag:          {etag}");
        }
        return Ok(());
    }
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

/// `cat --cache DIR`: the object's blocks through the cache, in order.
async fn cat_through_cache(
    store: &Store,
    url: &StoreUrl,
    s: &Settings,
    out: &mut tokio::io::Stdout,
) -> Result<()> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let info = store.head(url.key()).await?;
    let object = strata_cache::object_version(store, &info).await?;
    let cache = s.open_cache(true)?;
    let mut pieces = cache.stream_range(store, &object, 0..info.size);
    while let Some(piece) = pieces.next().await {
        let piece = piece.map_err(strata_store::StoreError::from)?;
        match out.write_all(&piece).await {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    out.flush().await?;
    cache.flush().await;
    Ok(())
}

/// `cat --daemon ADDR`: the object through the node's daemon, block by block, each block
/// pinned to the version the daemon saw first (a change mid-read fails, never mixes).
async fn cat_through_daemon(d: &strata_daemon::DaemonClient, url: &StoreUrl) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let u = url.to_string();
    let (size, etag) = d.stat(&u).await?;
    let mut out = tokio::io::stdout();
    const PIECE: u64 = 8 << 20;
    let mut at = 0;
    while at < size {
        let end = (at + PIECE).min(size);
        let piece = d.read_pinned(&u, &etag, size, at..end, false).await?;
        match out.write_all(&piece).await {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
        at = end;
    }
    out.flush().await?;
    Ok(())
}
