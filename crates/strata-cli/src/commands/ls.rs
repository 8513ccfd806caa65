//! `strata ls URL [-r] [-H]` and `strata du URL [-H]`.

use anyhow::Result;
use strata_store::{Listing, ObjectInfo, Store, StoreError, StoreUrl};

use crate::args::{DuArgs, LsArgs};
use crate::output;
use crate::settings::Settings;

pub async fn ls(args: &LsArgs, s: &Settings) -> Result<()> {
    let url = StoreUrl::parse(&args.url)?;
    let store = Store::open(&url, &s.store)?;
    let listing = if args.recursive {
        let (objects, skipped) = store.list_checked(url.key()).await?;
        Listing {
            objects,
            prefixes: Vec::new(),
            skipped,
        }
    } else {
        store.list_dir(url.key()).await?
    };
    // A URL that names an object (not a prefix) lists that object.
    let listing =
        if listing.objects.is_empty() && listing.prefixes.is_empty() && !url.is_prefix_syntax() {
            match store.head(url.key()).await {
                Ok(info) => Listing {
                    objects: vec![info],
                    prefixes: Vec::new(),
                    skipped: listing.skipped,
                },
                Err(e) if e.kind() == strata_store::ErrorKind::NotFound => {
                    return Err(StoreError::empty_prefix(&url).into());
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            listing
        };
    let skipped = output::report_skipped(&listing.skipped);
    let done = || -> Result<()> {
        match skipped {
            0 => Ok(()),
            n => Err(output::PartlySkipped(n).into()),
        }
    };
    if s.json {
        output::json(&serde_json::json!({
            "url": url.to_string(),
            "prefixes": listing.prefixes.iter().map(|p| format!("{p}/")).collect::<Vec<_>>(),
            "objects": listing.objects.iter().map(|o| object_json(&store, o)).collect::<Vec<_>>(),
            "skipped": listing.skipped,
        }));
        return done();
    }
    let width = listing
        .objects
        .iter()
        .map(|o| output::size(o.size, args.human_readable).len())
        .max()
        .unwrap_or(0);
    for p in &listing.prefixes {
        println!("{:>19}  {:>width$}  {}/", "", "PRE", display_key(&url, p));
    }
    for o in &listing.objects {
        println!(
            "{}  {:>width$}  {}",
            o.last_modified.format("%Y-%m-%d %H:%M:%S"),
            output::size(o.size, args.human_readable),
            display_key(&url, &o.key)
        );
    }
    done()
}

/// Local paths are shown as paths; remote keys as keys, like other object store tools.
fn display_key(url: &StoreUrl, key: &str) -> String {
    if url.local_path().is_some() {
        format!("/{key}")
    } else {
        key.to_string()
    }
}

fn object_json(store: &Store, o: &ObjectInfo) -> serde_json::Value {
    serde_json::json!({
        "url": store.url(&o.key).to_string(),
        "key": o.key,
        "size": o.size,
        "last_modified": o.last_modified.to_rfc3339(),
        "e_tag": o.e_tag,
    })
}

pub async fn du(args: &DuArgs, s: &Settings) -> Result<()> {
    let url = StoreUrl::parse(&args.url)?;
    let store = Store::open(&url, &s.store)?;
    let mut objects = store.list(url.key()).await?;
    if objects.is_empty() && !url.is_prefix_syntax() {
        objects = vec![store.head(url.key()).await?];
    }
    let bytes: u64 = objects.iter().map(|o| o.size).sum();
    if s.json {
        output::json(
            &serde_json::json!({"url": url.to_string(), "objects": objects.len(), "bytes": bytes}),
        );
    } else {
        println!(
            "{}\t{} objects\t{url}",
            output::size(bytes, args.human_readable),
            objects.len()
        );
    }
    Ok(())
}
