//! Listings of `file://` stores, walked here rather than by object_store's local backend:
//! that one follows every symbolic link (a link to `/` walked `/proc` until a loop error; a
//! link to `/etc/passwd` was uploaded by `cp -r`) and ends the whole listing at the first
//! name it cannot carry (a newline in one file name failed `ls` of the directory).
//!
//! Here a symbolic link is skipped and reported unless the store follows links
//! ([`Store::with_follow_symlinks`](crate::Store::with_follow_symlinks)); then a link back
//! to a directory being walked is a loop, reported and not entered. A name the store
//! cannot address (not UTF-8, a control character) is reported and skipped; the rest is
//! listed. Keys, sizes, times and ETags are those object_store's local backend gives for
//! the same files, so reads pinned to a listed ETag match.

use std::collections::HashSet;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::store::{ObjectInfo, Skipped};

/// What a walk found.
#[derive(Debug, Default)]
pub(crate) struct LocalListing {
    pub objects: Vec<ObjectInfo>,
    /// Directories directly under the listed one (one-level listings only), as keys.
    pub prefixes: Vec<String>,
    pub skipped: Vec<Skipped>,
}

/// Lists the directory `dir` (the key `key`, no trailing `/`): every file below it when
/// `recursive`, else its files and subdirectories. A missing directory lists as empty.
pub(crate) fn list(
    dir: &Path,
    key: &str,
    recursive: bool,
    follow: bool,
) -> std::io::Result<LocalListing> {
    let mut out = LocalListing::default();
    // The directory named by the caller is entered even when it is a link.
    let meta = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => return Ok(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    let mut ancestors = HashSet::new();
    ancestors.insert((meta.dev(), meta.ino()));
    walk(dir, key, recursive, follow, &mut ancestors, &mut out)?;
    out.objects.sort_by(|a, b| a.key.cmp(&b.key));
    out.prefixes.sort();
    out.skipped.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

fn walk(
    dir: &Path,
    key: &str,
    recursive: bool,
    follow: bool,
    ancestors: &mut HashSet<(u64, u64)>,
    out: &mut LocalListing,
) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        // Removed while listed: nothing there.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let raw = entry.file_name();
        let Some(name) = raw.to_str() else {
            out.skipped.push(Skipped {
                key: join(key, &raw.to_string_lossy()),
                reason: "the name is not valid UTF-8".into(),
            });
            continue;
        };
        let child = join(key, name);
        if name.chars().any(|c| c.is_control()) {
            out.skipped.push(Skipped {
                key: child,
                reason: "the name holds a control character, which this client cannot address"
                    .into(),
            });
            continue;
        }
        let ft = match entry.file_type() {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let meta = if ft.is_symlink() {
            if !follow {
                out.skipped.push(Skipped {
                    key: child,
                    reason: "a symbolic link, not followed (--follow-symlinks follows links)"
                        .into(),
                });
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    out.skipped.push(Skipped {
                        key: child,
                        reason: format!("a symbolic link that leads nowhere ({e})"),
                    });
                    continue;
                }
            }
        } else {
            match entry.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        };
        if meta.is_dir() {
            if !recursive {
                out.prefixes.push(child);
                continue;
            }
            let id = (meta.dev(), meta.ino());
            if !ancestors.insert(id) {
                out.skipped.push(Skipped {
                    key: child,
                    reason: "a symbolic link to a directory that holds it (a loop), not entered"
                        .into(),
                });
                continue;
            }
            walk(&path, &child, recursive, follow, ancestors, out)?;
            ancestors.remove(&id);
        } else if meta.is_file() {
            if is_staging_name(name) {
                continue;
            }
            out.objects.push(info(child, &meta));
        }
        // Sockets, FIFOs and devices are not objects.
    }
    Ok(())
}

fn join(key: &str, name: &str) -> String {
    if key.is_empty() {
        name.to_string()
    } else {
        format!("{key}/{name}")
    }
}

/// object_store's local backend writes multipart uploads to `NAME#N` beside the object and
/// never lists them.
fn is_staging_name(name: &str) -> bool {
    match name.split_once('#') {
        Some((_, suffix)) => !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// The object for a file, with the ETag object_store's local backend gives it (inode,
/// modification time in µs and size, in hex).
fn info(key: String, meta: &Metadata) -> ObjectInfo {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default();
    ObjectInfo {
        key,
        size: meta.len(),
        e_tag: Some(format!(
            "\"{:x}-{:x}-{:x}\"",
            meta.ino(),
            mtime.as_micros(),
            meta.len()
        )),
        version: None,
        last_modified: DateTime::<Utc>::from(std::time::UNIX_EPOCH + mtime),
    }
}
