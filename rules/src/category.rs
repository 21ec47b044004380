//! The category taxonomy and compact sets of categories.
//!
//! Categories are named in kebab-case (`self-harm`, `social-media`). Gatehouse ships the
//! taxonomy of the UK Safer Internet Centre's list plus what school policies add; a school's
//! configuration may add its own. A compiled policy numbers them, so a set of categories is a
//! single `u128` and matching many lists costs one `OR` per hit.

use serde::Serialize;

/// The index of a category inside one compiled policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CategoryId(pub u8);

/// At most this many categories fit in one policy (the width of [`CategorySet`]).
pub const MAX_CATEGORIES: usize = 128;

/// A set of categories, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CategorySet(pub u128);

impl CategorySet {
    pub const EMPTY: CategorySet = CategorySet(0);

    pub fn one(id: CategoryId) -> Self {
        CategorySet(1u128 << id.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn contains(self, id: CategoryId) -> bool {
        self.0 & (1u128 << id.0) != 0
    }
    pub fn insert(&mut self, id: CategoryId) {
        self.0 |= 1u128 << id.0;
    }
    pub fn union(self, other: CategorySet) -> Self {
        CategorySet(self.0 | other.0)
    }
    pub fn intersects(self, other: CategorySet) -> bool {
        self.0 & other.0 != 0
    }
    /// The members, lowest id first.
    pub fn iter(self) -> impl Iterator<Item = CategoryId> {
        set_bits(self.0).map(CategoryId)
    }
}

/// The positions of the set bits of `bits`, lowest first (for the id sets of the crate).
pub(crate) fn set_bits(mut bits: u128) -> impl Iterator<Item = u8> {
    std::iter::from_fn(move || {
        if bits == 0 {
            return None;
        }
        let id = bits.trailing_zeros() as u8;
        bits &= bits - 1;
        Some(id)
    })
}

/// The categories Gatehouse knows out of the box, with a one-line description each.
///
/// The first block maps 1:1 onto the UK Safer Internet Centre "appropriate filtering" list;
/// the rest are what school acceptable-use policies name.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "discrimination",
        "Promotes unjust treatment of people for a protected characteristic",
    ),
    (
        "hate",
        "Racist, antisemitic or other hateful and aggressive content",
    ),
    ("drugs", "Illegal drug taking and the promotion of drugs"),
    ("extremism", "Terrorist and extremist material (PREVENT)"),
    ("gambling", "Betting, casinos and lotteries"),
    ("malware", "Malware, cryptojacking, dialers and stalkerware"),
    ("phishing", "Phishing and fraud sites"),
    ("hacking", "Hacking tools, DDoS services and exploits"),
    ("misinformation", "Fake news and deliberate misinformation"),
    ("pornography", "Pornography and sexually explicit material"),
    (
        "piracy",
        "Copyright infringement: warez, cracks, illegal streams",
    ),
    ("self-harm", "Promotion of self-harm and eating disorders"),
    ("suicide", "Promotion of suicide"),
    ("violence", "Gore and the promotion of violence"),
    ("weapons", "Weapons and dangerous materials"),
    (
        "proxy-bypass",
        "Web proxies, redirectors and other filter bypass",
    ),
    ("vpn", "VPN services"),
    ("doh", "DNS-over-HTTPS resolvers that bypass the filter"),
    ("residential-proxies", "Residential proxy networks"),
    ("p2p", "Peer-to-peer file sharing and torrents"),
    ("ai-tools", "Generative AI tools and chatbots"),
    ("streaming", "Audio and video streaming"),
    ("social-media", "Social networks"),
    ("chat", "Chat and instant messaging"),
    ("forums", "Discussion forums"),
    ("games", "Online games"),
    ("educational-games", "Games made for learning"),
    ("dating", "Dating and personals"),
    ("webmail", "Web-based email"),
    (
        "mature",
        "Lingerie and adult-themed but not explicit content",
    ),
    ("sex-education", "Sex education and sexual health"),
    ("cults", "Sects and cults"),
    ("religion", "Religious organisations"),
    ("astrology", "Astrology and fortune telling"),
    ("cheating", "Homework and exam cheating services"),
    ("file-sharing", "File hosting and sharing services"),
    ("downloads", "Software download sites"),
    ("url-shorteners", "URL shorteners"),
    ("translation", "Translation services (usable as a bypass)"),
    (
        "remote-access",
        "Remote control and remote desktop services",
    ),
    ("dynamic-dns", "Dynamic DNS providers"),
    ("web-hosting", "Free web hosting"),
    ("advertising", "Advertising and marketing"),
    ("shopping", "Online shopping"),
    ("banking", "Banks"),
    ("finance", "Financial news and trading"),
    ("cryptocurrency", "Cryptocurrency exchanges and mining"),
    ("news", "News and press"),
    ("sports", "Sport"),
    ("celebrity", "Celebrity gossip"),
    ("jobs", "Job search"),
    ("blogs", "Blogs"),
    ("manga", "Manga and comics"),
    ("lifestyle", "Cooking and other leisure"),
    ("children", "Sites made for children"),
    ("mobile-phone", "Ringtones and mobile phone extras"),
    ("software-updates", "Operating system and software updates"),
    ("system-tools", "Computer cleaning and system tools"),
];

/// True when `name` is a valid category name: lowercase ASCII letters, digits and `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let mut s = CategorySet::EMPTY;
        assert!(s.is_empty());
        s.insert(CategoryId(3));
        s.insert(CategoryId(127));
        assert!(s.contains(CategoryId(3)) && s.contains(CategoryId(127)));
        assert!(!s.contains(CategoryId(4)));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![CategoryId(3), CategoryId(127)]
        );
        assert!(s.intersects(CategorySet::one(CategoryId(3))));
    }

    #[test]
    fn builtin_taxonomy_is_valid_and_fits() {
        assert!(BUILTIN.len() < MAX_CATEGORIES);
        for (name, _) in BUILTIN {
            assert!(valid_name(name), "{name}");
        }
        let mut names: Vec<_> = BUILTIN.iter().map(|(n, _)| n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), BUILTIN.len());
    }
}
