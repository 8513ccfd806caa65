//! Fleet-wide drain admission: at most `max_writers` drains upload at once across every
//! node that shares a checkpoint root, coordinated through the store itself.
//!
//! - **Leases** (stores that enforce conditional create): `max_writers` lease slots under
//!   `ROOT/.strata-leases/slot-K/`. A writer holds slot K by creating the object
//!   `gen-G` there with put-if-absent, where G is one more than the highest generation
//!   present (or 0); it may do so only when that highest generation is absent or expired.
//!   Exactly one creator of a generation succeeds. The holder renews its expiry (a plain
//!   overwrite of its own object, at a third of the lifetime) and deletes it when done. A
//!   crashed holder's lease expires and the next writer takes the slot with the next
//!   generation.
//! - **Time slots** (stores that ignore conditional create, such as Garage): writer `i` of
//!   `n` waits `(i mod rounds) × slot` after its save, where `rounds = ⌈n / max_writers⌉`
//!   and `slot` is the configured slot or the last measured drain time, whichever is
//!   longer. Deterministic, no store traffic.
//!
//! Either way the drain starts after a uniform random jitter, and the store layer backs off
//! on 503 SlowDown.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strata_store::{ConditionalCreate, CreateOutcome, Location};

use crate::error::Result;
use crate::layout;

/// Which admission to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdmissionKind {
    /// No fleet-wide admission (the jitter and the node's bytes/s limit still apply).
    Off,
    /// Leases in the store (needs conditional create).
    Leases,
    /// Deterministic time slots.
    Slots,
    /// Leases where the store enforces conditional create, else slots (probed at open).
    Auto,
}

/// Settings of drain admission.
#[derive(Debug, Clone)]
pub struct AdmissionConfig {
    /// Default: [`AdmissionKind::Auto`].
    pub kind: AdmissionKind,
    /// Drains uploading at once across the fleet. Default: 8.
    pub max_writers: u32,
    /// Lease lifetime; the holder renews at a third of it. Default: 10 minutes.
    pub lease_ttl: Duration,
    /// How often a writer waiting for a lease looks again (jittered ±50%). Default: 1 s.
    pub poll: Duration,
    /// The shortest time slot. Default: 10 s.
    pub slot: Duration,
    /// This writer's index among `writers` for time slots. Default: the rank.
    pub writer_index: Option<u32>,
    /// Writers sharing the root, for time slots. Default: the world size.
    pub writers: Option<u32>,
    /// Where the leases live. Default: `.strata-leases` under the checkpoint root.
    pub lease_root: Option<Location>,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            kind: AdmissionKind::Auto,
            max_writers: 8,
            lease_ttl: Duration::from_secs(600),
            poll: Duration::from_secs(1),
            slot: Duration::from_secs(10),
            writer_index: None,
            writers: None,
            lease_root: None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct LeaseBody {
    owner: String,
    nonce: u64,
    expires_unix_ms: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Admission as resolved at open.
pub(crate) enum Admission {
    Off,
    Leases {
        root: Location,
        cfg: Box<AdmissionConfig>,
        owner: String,
    },
    Slots {
        index: u32,
        rounds: u32,
        slot: Duration,
    },
}

/// A held admission; released on [`Held::release`] (or, for a lease, when it expires).
pub(crate) struct Held {
    lease: Option<(Location, String, tokio::task::JoinHandle<()>)>,
    /// Time spent waiting for admission.
    pub waited: Duration,
}

impl Held {
    /// Gives the slot back.
    pub async fn release(self) {
        if let Some((root, key, renew)) = self.lease {
            renew.abort();
            if let Err(e) = root.store.delete(&key).await {
                tracing::warn!("checkpoint drain: releasing lease {key}: {e} (it expires)");
            }
        }
    }
}

impl Admission {
    /// Resolves `cfg` for a writer (`rank` of `world`) on the root `root`.
    pub(crate) async fn resolve(
        cfg: &AdmissionConfig,
        root: &Location,
        rank: u32,
        world: u32,
    ) -> Result<Self> {
        let kind = match cfg.kind {
            AdmissionKind::Auto => match root
                .store
                .probe_under(&root.prefix)
                .await?
                .conditional_create
            {
                ConditionalCreate::Enforced => AdmissionKind::Leases,
                _ => AdmissionKind::Slots,
            },
            k => k,
        };
        Ok(match kind {
            AdmissionKind::Off => Self::Off,
            AdmissionKind::Leases => Self::Leases {
                root: cfg.lease_root.clone().unwrap_or_else(|| Location {
                    store: root.store.clone(),
                    prefix: root.key(layout::LEASES),
                }),
                cfg: Box::new(cfg.clone()),
                owner: format!("{}:{}:rank{rank}", hostname(), std::process::id()),
            },
            AdmissionKind::Slots | AdmissionKind::Auto => {
                let writers = cfg.writers.unwrap_or(world).max(1);
                Self::Slots {
                    index: cfg.writer_index.unwrap_or(rank),
                    rounds: writers.div_ceil(cfg.max_writers.max(1)),
                    slot: cfg.slot,
                }
            }
        })
    }

    /// A short name for reports.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Leases { .. } => "leases",
            Self::Slots { .. } => "slots",
        }
    }

    /// Waits for admission. `last_drain` (the previous drain's time) lengthens time slots.
    pub(crate) async fn acquire(&self, last_drain: Option<Duration>) -> Result<Held> {
        let t = std::time::Instant::now();
        match self {
            Self::Off => Ok(Held {
                lease: None,
                waited: Duration::ZERO,
            }),
            Self::Slots {
                index,
                rounds,
                slot,
            } => {
                let slot = last_drain.map_or(*slot, |d| (*slot).max(d.mul_f64(1.2)));
                let wait = slot * (index % rounds.max(&1));
                tokio::time::sleep(wait).await;
                Ok(Held {
                    lease: None,
                    waited: t.elapsed(),
                })
            }
            Self::Leases { root, cfg, owner } => {
                let (key, nonce) = acquire_lease(root, cfg, owner).await?;
                let renew = {
                    let (root, key, owner, ttl) =
                        (root.clone(), key.clone(), owner.clone(), cfg.lease_ttl);
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(ttl / 3).await;
                            let body = lease_body(&owner, nonce, ttl);
                            if let Err(e) = root.store.put(&key, body).await {
                                tracing::warn!("checkpoint drain: renewing lease {key}: {e}");
                            }
                        }
                    })
                };
                Ok(Held {
                    lease: Some((root.clone(), key, renew)),
                    waited: t.elapsed(),
                })
            }
        }
    }
}

fn lease_body(owner: &str, nonce: u64, ttl: Duration) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&LeaseBody {
            owner: owner.to_string(),
            nonce,
            expires_unix_ms: now_ms() + ttl.as_millis() as i64,
        })
        .expect("serializes"),
    )
}

/// Takes a free lease slot, waiting as long as it takes. Returns the lease key and nonce.
async fn acquire_lease(
    root: &Location,
    cfg: &AdmissionConfig,
    owner: &str,
) -> Result<(String, u64)> {
    let slots = cfg.max_writers.max(1);
    let nonce: u64 = rand::random();
    loop {
        // Start at a random slot so waiters spread over the slots.
        let first = rand::random::<u32>() % slots;
        for i in 0..slots {
            let k = (first + i) % slots;
            let dir = root.key(&format!("slot-{k}"));
            let held = root.store.list(&dir).await?;
            let highest = held
                .iter()
                .filter_map(|o| {
                    let g = o.key.rsplit('/').next()?.strip_prefix("gen-")?;
                    Some((g.parse::<u64>().ok()?, o.key.clone()))
                })
                .max();
            let next = match &highest {
                None => 0,
                Some((g, key)) => {
                    let live = match root.store.get(key).await {
                        Ok(b) => serde_json::from_slice::<LeaseBody>(&b)
                            .map(|l| l.expires_unix_ms > now_ms())
                            // An unreadable lease is treated as live until its object is
                            // old enough to be stale by the clock of the store.
                            .unwrap_or_else(|_| {
                                held.iter().any(|o| {
                                    &o.key == key
                                        && (chrono::Utc::now() - o.last_modified)
                                            .to_std()
                                            .is_ok_and(|age| age < cfg.lease_ttl)
                                })
                            }),
                        // Released between the listing and now.
                        Err(e) if e.kind() == strata_store::ErrorKind::NotFound => false,
                        Err(e) => return Err(e.into()),
                    };
                    if live {
                        continue;
                    }
                    g + 1
                }
            };
            let key = format!("{dir}/gen-{next:016}");
            let body = lease_body(owner, nonce, cfg.lease_ttl);
            match root.store.put_if_absent(&key, body).await? {
                CreateOutcome::Created => {
                    // A listing can be stale: a writer that saw the slot empty after a
                    // release creates gen-0 while one that saw the released gen-0 creates
                    // gen-1, and both "won". So a creator holds the slot only if no other
                    // live lease is there after its create; otherwise it withdraws and
                    // waits. (Of two creators, the later one always sees the earlier; at
                    // worst both withdraw and retry after a jittered poll.)
                    if other_live_lease(root, &dir, &key).await? {
                        let _ = root.store.delete(&key).await;
                        continue;
                    }
                    // Old generations (expired holders) are garbage now.
                    for o in &held {
                        if o.key != key {
                            let _ = root.store.delete(&o.key).await;
                        }
                    }
                    return Ok((key, nonce));
                }
                CreateOutcome::AlreadyExists => {
                    // Someone else won, unless our own first attempt's response was lost.
                    if let Ok(b) = root.store.get(&key).await
                        && serde_json::from_slice::<LeaseBody>(&b).is_ok_and(|l| l.nonce == nonce)
                    {
                        return Ok((key, nonce));
                    }
                }
            }
        }
        let jitter = 0.5 + rand::random::<f64>();
        tokio::time::sleep(cfg.poll.mul_f64(jitter)).await;
    }
}

/// Whether slot `dir` holds a live lease other than `ours`.
async fn other_live_lease(root: &Location, dir: &str, ours: &str) -> Result<bool> {
    for o in root.store.list(dir).await? {
        if o.key == ours {
            continue;
        }
        match root.store.get(&o.key).await {
            Ok(b) => {
                if serde_json::from_slice::<LeaseBody>(&b)
                    .is_ok_and(|l| l.expires_unix_ms > now_ms())
                {
                    return Ok(true);
                }
            }
            Err(e) if e.kind() == strata_store::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "host".into())
}
