//! Merging one layer of settings over another.

/// A layer of settings whose set fields override another's.
pub trait Overlay {
    /// Applies `high` over `self`: every field set in `high` wins.
    fn overlay(&mut self, high: &Self);
}

/// Implements [`Overlay`] for a struct whose fields are all `Option`s: a field set in the
/// higher layer replaces the lower one's. The field list is matched exhaustively (no `..`), so
/// a field added to the struct but not to the list is a compile error, not a setting silently
/// ignored.
///
/// ```
/// #[derive(Default)]
/// struct L { a: Option<u32>, b: Option<String> }
/// strata_config::overlay_fields!(L { a, b });
/// use strata_config::Overlay;
/// let mut low = L { a: Some(1), b: Some("x".into()) };
/// low.overlay(&L { a: Some(2), b: None });
/// assert_eq!((low.a, low.b.as_deref()), (Some(2), Some("x")));
/// ```
#[macro_export]
macro_rules! overlay_fields {
    ($ty:ident { $($f:ident),* $(,)? }) => {
        impl $crate::Overlay for $ty {
            fn overlay(&mut self, high: &Self) {
                let $ty { $($f),* } = high;
                $( if $f.is_some() { self.$f = $f.clone(); } )*
            }
        }
    };
}
