//! Monthly cost with lifecycle transitions, from a price book.
//!
//! The default price book is `data/pricebook.toml`, embedded in the binary; it holds the
//! seeds' prices and says which figures are list prices the seeds do not give. A user's file
//! (or a scenario's `[prices]` table) overrides figures one by one.
//!
//! Each `[[cost.data]]` item is stored in monthly cohorts: `size` arrives in month 0 and
//! `inflow` every month from month 0. A cohort's class follows its age (30-day months) through
//! the lifecycle `transitions`, and it is deleted at `expire`. Storage, requests, transitions
//! and retrievals are priced month by month, and the same data without its lifecycle is priced
//! beside it, so the saving is visible. All costs are non-negative and add up item by item.

use crate::error::PlanError;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::scenario::ScenarioError;
use strata_units::Quantity;

const DEFAULT_BOOK: &str = include_str!("../data/pricebook.toml");

/// Prices by section and class (see `data/pricebook.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceBook {
    sections: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Default for PriceBook {
    fn default() -> Self {
        let mut b = PriceBook {
            sections: BTreeMap::new(),
        };
        let t: toml::Table = toml::from_str(DEFAULT_BOOK).expect("the embedded price book parses");
        b.overlay(&t).expect("the embedded price book is valid");
        b
    }
}

const SECTIONS: [&str; 8] = [
    "storage",
    "get",
    "put",
    "transition",
    "retrieval",
    "monitoring",
    "transfer",
    "comment",
];

impl PriceBook {
    /// Overrides figures with a table of the book's layout. Errors name the key.
    pub fn overlay(&mut self, t: &toml::Table) -> Result<(), PlanError> {
        for (section, v) in t {
            if !SECTIONS.contains(&section.as_str()) {
                return Err(PlanError::Invalid(format!(
                    "unknown price section {section:?} (storage, get, put, transition, retrieval, monitoring, transfer)"
                )));
            }
            let Some(inner) = v.as_table() else {
                return Err(PlanError::Invalid(format!(
                    "{section}: expected a table of class = price"
                )));
            };
            for (class, price) in inner {
                let p = price
                    .as_float()
                    .or_else(|| price.as_integer().map(|i| i as f64))
                    .ok_or_else(|| {
                        PlanError::Invalid(format!("{section}.{class}: {price} is not a number"))
                    })?;
                if !(p.is_finite() && p >= 0.0) {
                    return Err(PlanError::Invalid(format!(
                        "{section}.{class}: {p} must be ≥ 0"
                    )));
                }
                self.sections
                    .entry(section.clone())
                    .or_default()
                    .insert(class.clone(), p);
            }
        }
        Ok(())
    }

    /// Reads a price book file over the defaults.
    pub fn load_over_defaults(text: &str, origin: &str) -> Result<Self, PlanError> {
        let t: toml::Table =
            toml::from_str(text).map_err(|e| PlanError::Invalid(format!("{origin}: {e}")))?;
        let mut b = Self::default();
        b.overlay(&t)
            .map_err(|e| PlanError::Invalid(format!("{origin}: {e}")))?;
        Ok(b)
    }

    fn get(&self, section: &str, class: &str) -> Option<f64> {
        self.sections.get(section)?.get(class).copied()
    }

    /// USD per GB-month of `class`.
    pub fn storage(&self, class: &str) -> Option<f64> {
        self.get("storage", class)
    }

    /// A price; 0 when the book has none for that section and class.
    pub fn or_zero(&self, section: &str, class: &str) -> f64 {
        self.get(section, class).unwrap_or(0.0)
    }

    /// The storage classes the book knows.
    pub fn classes(&self) -> Vec<String> {
        self.sections
            .get("storage")
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The book as a TOML table (for `--json` output and the workbench).
    pub fn to_map(&self) -> &BTreeMap<String, BTreeMap<String, f64>> {
        &self.sections
    }
}

#[allow(missing_docs)] // Raw* mirror the `[cost]` section of a scenario file key for key; docs/planner.md documents each.
/// The `[cost]` section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCost {
    pub months: Option<f64>,
    #[serde(default)]
    pub data: Vec<RawData>,
}

#[allow(missing_docs)] // Raw* mirror the `[[cost.data]]` items key for key; docs/planner.md documents each.
/// One `[[cost.data]]` item as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    pub name: Option<String>,
    pub size: Option<Quantity>,
    pub inflow: Option<Quantity>,
    pub class: Option<String>,
    pub object_size: Option<Quantity>,
    #[serde(default)]
    pub transitions: Vec<RawTransition>,
    pub expire: Option<Quantity>,
    pub gets_per_month: Option<f64>,
    pub puts_per_month: Option<f64>,
    /// Bytes read back per month (retrieval fees for the cold classes).
    pub reads_per_month: Option<Quantity>,
}

#[allow(missing_docs)] // Raw* mirror the `[[cost.data.transitions]]` keys; docs/planner.md documents each.
/// One lifecycle transition as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransition {
    pub after: Option<Quantity>,
    pub class: Option<String>,
}

/// One lifecycle step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// Age of the bytes when they move, days.
    pub after_days: f64,
    /// The storage class they move to.
    pub class: String,
}

/// One stored item, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Data {
    /// The item's name, for the tables.
    pub name: String,
    /// Bytes stored in month 0.
    pub size: f64,
    /// Bytes added every month.
    pub inflow: f64,
    /// The storage class the bytes start in.
    pub class: String,
    /// Bytes per object (to count objects for transitions and PUTs). Default: 64 MiB.
    pub object_size: f64,
    /// The lifecycle transitions, by age.
    pub transitions: Vec<Transition>,
    /// Age at which the bytes are deleted, days; none: kept.
    pub expire_days: Option<f64>,
    /// GET requests per month.
    pub gets_per_month: f64,
    /// Default: the inflow's objects.
    pub puts_per_month: f64,
    /// Bytes read per month (retrieval fees of cold classes).
    pub reads_per_month: f64,
}

/// The cost section, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    /// Months to price. Default: 12.
    pub months: u32,
    /// The items priced.
    pub data: Vec<Data>,
}

impl Cost {
    /// Validates `[cost]` against the price book.
    pub fn from_raw(c: &RawCost, book: &PriceBook) -> Result<Self, ScenarioError> {
        let e = |field: String, message: String| crate::scenario::err(field, message);
        let months = match c.months {
            None => 12,
            Some(m) if m.is_finite() && m >= 1.0 && m.fract() == 0.0 && m <= 1200.0 => m as u32,
            Some(m) => {
                return Err(e(
                    "cost.months".into(),
                    format!("{m} must be a whole number from 1 to 1200"),
                ));
            }
        };
        if c.data.is_empty() {
            return Err(e(
                "cost.data".into(),
                "missing: give at least one [[cost.data]] item".into(),
            ));
        }
        let class_ok = |field: String, class: &str| {
            if book.storage(class).is_some() {
                Ok(())
            } else {
                Err(e(
                    field,
                    format!(
                        "unknown storage class {class:?} (the price book has: {})",
                        book.classes().join(", ")
                    ),
                ))
            }
        };
        let mut data = Vec::new();
        for (i, d) in c.data.iter().enumerate() {
            let f = |n: &str| format!("cost.data[{i}].{n}");
            let bytes = |q: &Option<Quantity>, n: &str| -> Result<f64, ScenarioError> {
                q.as_ref()
                    .map(|q| q.bytes())
                    .transpose()
                    .map_err(|m| e(f(n), m.to_string()))
                    .map(|v| v.unwrap_or(0.0))
            };
            let class = d
                .class
                .clone()
                .ok_or_else(|| e(f("class"), "missing".into()))?;
            class_ok(f("class"), &class)?;
            let size = bytes(&d.size, "size")?;
            let inflow = bytes(&d.inflow, "inflow")?;
            if size == 0.0 && inflow == 0.0 {
                return Err(e(f("size"), "give a size, an inflow or both".into()));
            }
            let object_size = match &d.object_size {
                None => (64u64 << 20) as f64,
                Some(q) => {
                    let v = q.bytes().map_err(|m| e(f("object_size"), m.to_string()))?;
                    if v <= 0.0 {
                        return Err(e(f("object_size"), "must be > 0".into()));
                    }
                    v
                }
            };
            let mut transitions = Vec::new();
            let mut last = -1.0;
            for (j, t) in d.transitions.iter().enumerate() {
                let tf = |n: &str| format!("cost.data[{i}].transitions[{j}].{n}");
                let days = t
                    .after
                    .as_ref()
                    .ok_or_else(|| e(tf("after"), "missing".into()))?
                    .secs()
                    .map_err(|m| e(tf("after"), m.to_string()))?
                    / 86_400.0;
                if days <= last {
                    return Err(e(
                        tf("after"),
                        "transitions must come in increasing order of age".into(),
                    ));
                }
                last = days;
                let class = t
                    .class
                    .clone()
                    .ok_or_else(|| e(tf("class"), "missing".into()))?;
                class_ok(tf("class"), &class)?;
                transitions.push(Transition {
                    after_days: days,
                    class,
                });
            }
            let expire_days = d
                .expire
                .as_ref()
                .map(|q| q.secs().map(|s| s / 86_400.0))
                .transpose()
                .map_err(|m| e(f("expire"), m.to_string()))?;
            let nonneg = |v: Option<f64>, n: &str| match v {
                None => Ok(None),
                Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
                Some(x) => Err(e(f(n), format!("{x} must be ≥ 0"))),
            };
            data.push(Data {
                name: d.name.clone().unwrap_or_else(|| format!("data {i}")),
                size,
                inflow,
                class,
                object_size,
                transitions,
                expire_days,
                gets_per_month: nonneg(d.gets_per_month, "gets_per_month")?.unwrap_or(0.0),
                puts_per_month: nonneg(d.puts_per_month, "puts_per_month")?
                    .unwrap_or((inflow / object_size).ceil()),
                reads_per_month: bytes(&d.reads_per_month, "reads_per_month")?,
            });
        }
        Ok(Cost { months, data })
    }
}

/// One month of one item.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MonthCost {
    /// The month, from 0.
    pub month: u32,
    /// Bytes stored, by class.
    pub stored: BTreeMap<String, f64>,
    /// USD for storage.
    pub storage: f64,
    /// USD for requests.
    pub requests: f64,
    /// USD for lifecycle transitions.
    pub transitions: f64,
    /// USD for retrieval.
    pub retrieval: f64,
    /// USD for monitoring (intelligent tiering).
    pub monitoring: f64,
    /// USD in all.
    pub total: f64,
}

/// One item over the months.
#[derive(Debug, Clone, Serialize)]
pub struct ItemCost {
    /// The item.
    pub name: String,
    /// Month by month.
    pub months: Vec<MonthCost>,
    /// USD over the months.
    pub total: f64,
    /// The same item kept in its first class all along, for comparison.
    pub total_without_lifecycle: f64,
}

/// The cost plan.
#[derive(Debug, Clone, Serialize)]
pub struct CostPlan {
    /// Each item's costs.
    pub items: Vec<ItemCost>,
    /// Sum over items, month by month.
    pub monthly: Vec<f64>,
    /// USD over the items and months.
    pub total: f64,
    /// The same with every item kept in its first class.
    pub total_without_lifecycle: f64,
}

fn class_at(d: &Data, age_days: f64) -> Option<&str> {
    if d.expire_days.is_some_and(|x| age_days >= x) {
        return None;
    }
    let mut c = d.class.as_str();
    for t in &d.transitions {
        if age_days >= t.after_days {
            c = &t.class;
        }
    }
    Some(c)
}

fn price_item(d: &Data, months: u32, book: &PriceBook, lifecycle: bool) -> Vec<MonthCost> {
    let plain = Data {
        transitions: Vec::new(),
        ..d.clone()
    };
    let d = if lifecycle { d } else { &plain };
    (0..months)
        .map(|m| {
            let mut mc = MonthCost {
                month: m,
                ..Default::default()
            };
            for c in 0..=m {
                let bytes = if c == 0 { d.size + d.inflow } else { d.inflow };
                if bytes == 0.0 {
                    continue;
                }
                let age = 30.0 * (m - c) as f64;
                let Some(class) = class_at(d, age) else {
                    continue;
                };
                *mc.stored.entry(class.to_string()).or_default() += bytes;
                mc.storage += bytes / 1e9 * book.or_zero("storage", class);
                let objects = (bytes / d.object_size).ceil();
                mc.monitoring += objects / 1000.0 * book.or_zero("monitoring", class);
                if m > c {
                    let before = class_at(d, age - 30.0);
                    if before != Some(class) {
                        mc.transitions += objects / 1000.0 * book.or_zero("transition", class);
                    }
                }
            }
            mc.requests = d.gets_per_month / 1000.0 * book.or_zero("get", &d.class)
                + d.puts_per_month / 1000.0 * book.or_zero("put", &d.class);
            mc.retrieval = d.reads_per_month / 1e9 * book.or_zero("retrieval", &d.class);
            mc.total = mc.storage + mc.requests + mc.transitions + mc.retrieval + mc.monitoring;
            mc
        })
        .collect()
}

/// Prices the cost section.
pub fn evaluate(c: &Cost, book: &PriceBook) -> CostPlan {
    let mut items = Vec::new();
    let mut monthly = vec![0.0; c.months as usize];
    for d in &c.data {
        let months = price_item(d, c.months, book, true);
        let plain = price_item(d, c.months, book, false);
        for (i, m) in months.iter().enumerate() {
            monthly[i] += m.total;
        }
        items.push(ItemCost {
            name: d.name.clone(),
            total: months.iter().map(|m| m.total).sum(),
            total_without_lifecycle: plain.iter().map(|m| m.total).sum(),
            months,
        });
    }
    CostPlan {
        total: items.iter().map(|i| i.total).sum(),
        total_without_lifecycle: items.iter().map(|i| i.total_without_lifecycle).sum(),
        items,
        monthly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_example_by_hand() {
        // The seed's StorageCostAnalyzer: 10 TB of S3 Standard, 1 TB of EFS, 2.4 TB of FSx
        // scratch 2 (priced here per GB-month, as the book is).
        let s = crate::scenario::Scenario::from_toml(
            r#"
            [cost]
            months = 1
            [[cost.data]]
            name = "training data"
            size = "10 TB"
            class = "s3_standard"
            gets_per_month = 100000
            puts_per_month = 0
            [[cost.data]]
            size = "1 TB"
            class = "efs_standard"
            "#,
            "t",
        )
        .unwrap();
        let p = evaluate(s.cost.as_ref().unwrap(), &s.prices);
        // 10 000 GB × 0.023 + 100 000 / 1000 × 0.0004 + 1000 GB × 0.30.
        assert!(
            (p.total - (230.0 + 0.04 + 300.0)).abs() < 1e-9,
            "{}",
            p.total
        );
    }

    #[test]
    fn lifecycle_moves_cohorts_and_saves() {
        let s = crate::scenario::Scenario::from_toml(
            r#"
            [cost]
            months = 6
            [[cost.data]]
            size = "100 TB"
            class = "s3_standard"
            object_size = "1 GB"
            transitions = [ { after = "30 d", class = "s3_standard_ia" }, { after = "90 d", class = "s3_glacier" } ]
            "#,
            "t",
        )
        .unwrap();
        let p = evaluate(s.cost.as_ref().unwrap(), &s.prices);
        let m = &p.items[0].months;
        assert!((m[0].storage - 100_000.0 * 0.023).abs() < 1e-6);
        assert!((m[1].storage - 100_000.0 * 0.0125).abs() < 1e-6);
        // 100 000 objects move to IA in month 1: 100 × $0.01.
        assert!(
            (m[1].transitions - 1.0).abs() < 1e-9,
            "{}",
            m[1].transitions
        );
        assert!((m[3].storage - 100_000.0 * 0.004).abs() < 1e-6);
        assert!(p.total < p.total_without_lifecycle);
    }

    #[test]
    fn overrides_and_bad_prices() {
        let mut b = PriceBook::default();
        let t: toml::Table = toml::from_str("[storage]\ns3_standard = 0.021").unwrap();
        b.overlay(&t).unwrap();
        assert_eq!(b.storage("s3_standard"), Some(0.021));
        let bad: toml::Table = toml::from_str("[storage]\ns3_standard = -1").unwrap();
        assert!(
            b.overlay(&bad)
                .unwrap_err()
                .to_string()
                .contains("storage.s3_standard")
        );
        let bad: toml::Table = toml::from_str("[nope]\nx = 1").unwrap();
        assert!(b.overlay(&bad).is_err());
        let e = crate::scenario::Scenario::from_toml(
            "[cost]\n[[cost.data]]\nsize = 1\nclass = \"s3_platinum\"",
            "t",
        )
        .unwrap_err();
        assert_eq!(e.field, "cost.data[0].class");
    }
}
