//! Search terms: pull the query out of a search engine's URL, normalise it, and match it
//! against theme phrase lists.
//!
//! ```
//! use gatehouse_rules::search::{extract_query, normalize};
//! let q = extract_query("https://www.google.co.uk/search?q=S3lf+H%C3%A4rm&tbm=isch").unwrap();
//! assert_eq!(q.engine.name(), "google");
//! assert_eq!(normalize(&q.decoded()).loose, "self harm");
//! ```

mod extract;
mod model;
mod normalize;
mod sieve;
mod slips;
mod themes;

pub use extract::{extract_from, extract_query, Engine, RawQuery};
pub use model::{
    for_each_distinct_feature, for_each_text_feature, FeatureKind, MAX_FEATURES, MAX_LOOKED,
};
pub use normalize::{decode_component, normalize, Normalized};
pub use sieve::SieveBuf;
pub use themes::{
    ComboPart, PhraseId, ThemeHits, ThemeId, ThemeMatcher, ThemeMatcherBuilder, ThemeSet, LEARNED,
    LOWER, PLAN,
};
