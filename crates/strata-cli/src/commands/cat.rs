//! `strata cat URL` and `strata stat URL`.

use anyhow::Result;
use strata_store::{Store, StoreUrl};

use crate::args::{CatArgs, UrlArg};
use crate::output;
use crate::settings::Settings;

pub async fn cat(args: &CatArgs, s: &Settings) -> Result<()> {
    let urls: Vec<StoreUrl> = args
        .urls
        .iter()
        .map(|u| StoreUrl::parse(u))
        .collect::<Result<_, _>>()?;
    if let Some(d) = s.daemon_client()? {
        return cat_through_daemon(&d, &urls).await;
    }
    if s.read_through && urls.iter().all(|u| u.local_path().is_none()) {
        return cat_through_cache(&urls, s).await;
    }
    for url in &urls {
        cat_one(url, s).await?;
    }
    Ok(())
}

/// Blocks (or 8 MiB pieces) `cat` keeps in flight, through a cache or the daemon: 16 cannot
/// fill a link whose single connections get 1/16 of it (the `s3` profile) once latency and
/// in-order delivery take their share; 32 can.
const IN_FLIGHT: usize = 32;

/// Pieces of several objects, in order, `in_flight` at a time across object boundaries,
/// written to standard output. A closed pipe ends it quietly.
async fn write_pieces<F>(pieces: Vec<F>, in_flight: usize) -> Result<()>
where
    F: std::future::Future<Output = Result<bytes::Bytes>>,
{
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let mut out = tokio::io::stdout();
    let mut s = futures::stream::iter(pieces).buffered(in_flight.max(1));
    while let Some(piece) = s.next().await {
        match out.write_all(&piece?).await {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    out.flush().await?;
    Ok(())
}

async fn cat_one(url: &StoreUrl, s: &Settings) -> Result<()> {
    let url = url.clone();
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
    if let Some(d) = s.daemon_client()? {
        let (size, etag) = d.stat(&url.to_string()).await?;
        if s.json {
            output::json(&serde_json::json!({"url": url.to_string(), "size": size, "e_tag": etag}));
        } else {
            println!("url:           {url}");
            println!(
                "size:          {size} ({})",
                strata_units::format_size(size)
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
            strata_units::format_size(info.size)
        );
        println!("etag:          {}", info.e_tag.as_deref().unwrap_or("-"));
        println!("last modified: {}", info.last_modified.to_rfc3339());
        if let Some(v) = &info.version {
            println!("version:       {v}");
        }
    }
    Ok(())
}

/// `cat --cache DIR`: the objects' blocks through the cache, in order, [`IN_FLIGHT`] at a
/// time across object boundaries.
async fn cat_through_cache(urls: &[StoreUrl], s: &Settings) -> Result<()> {
    let cache = s.open_cache(true)?;
    let mut objects = Vec::new();
    for url in urls {
        let store = Store::open(url, &s.store)?;
        let info = store.head(url.key()).await?;
        let object = strata_cache::object_version(&store, &info).await?;
        objects.push((store, object));
    }
    let g = cache.geometry();
    let cache_ref = &cache;
    let pieces: Vec<_> = objects
        .iter()
        .flat_map(|(store, object)| {
            (0..g.block_count(object.size)).map(move |i| async move {
                cache_ref
                    .get_block(store, object, i, strata_cache::Why::Demand)
                    .await
                    .map_err(|e| anyhow::Error::new(strata_store::StoreError::from(e)))
            })
        })
        .collect();
    write_pieces(pieces, IN_FLIGHT).await?;
    cache.flush().await;
    Ok(())
}

/// `cat --daemon ADDR`: the objects through the node's daemon in 8 MiB pieces, 32 in flight
/// across object boundaries (the daemon fetches what is missing side by side, once for the
/// node), each piece pinned to the version the daemon saw first (a change mid-read fails,
/// never mixes).
async fn cat_through_daemon(
    d: &strata_daemon_client::DaemonClient,
    urls: &[StoreUrl],
) -> Result<()> {
    const PIECE: u64 = 8 << 20;
    let mut objects = Vec::new();
    for url in urls {
        let u = url.to_string();
        let (size, etag) = d.stat(&u).await?;
        objects.push((u, size, etag));
    }
    let pieces: Vec<_> = objects
        .iter()
        .flat_map(|(u, size, etag)| {
            let size = *size;
            (0..size.div_ceil(PIECE)).map(move |i| async move {
                let range = i * PIECE..((i + 1) * PIECE).min(size);
                d.read_pinned(u, etag, size, range, false)
                    .await
                    .map_err(anyhow::Error::new)
            })
        })
        .collect();
    write_pieces(pieces, IN_FLIGHT).await
}
