//! The benchmark corpus: a policy over every list in `../shared/data/blocklists` plus
//! synthetic names up to a target count, and a mix of request URLs.
//!
//! `GATEHOUSE_DATA` overrides where the shared data lives (default: `../shared/data` beside
//! the repository).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "benchmark harness: a failure stops the run"
)]

use gatehouse_rules::{compile, config::ConfigFile, Compiled};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where the third-party data is.
pub fn data_dir() -> PathBuf {
    std::env::var_os("GATEHOUSE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// The repository's `lists/` (themes, PSL).
pub fn repo_lists() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lists")
}

/// A deterministic generator.
#[derive(Debug)]
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() as usize) % n.max(1)
    }
}

const TLDS: &[&str] = &[
    "com", "net", "org", "info", "co.uk", "de", "fr", "ru", "xyz", "top", "io", "online", "site",
];

/// Writes `count` synthetic, distinct host names, one a line (a quarter under `cdn.`).
pub fn synthetic_names(count: usize, path: &Path) {
    let mut rng = Lcg(42);
    let mut text = String::with_capacity(count * 24);
    for i in 0..count {
        if rng.below(4) == 0 {
            text.push_str("cdn.");
        }
        for _ in 0..6 + rng.below(10) {
            text.push((b'a' + rng.below(26) as u8) as char);
        }
        let _ = writeln!(text, "{i:x}.{}", TLDS[rng.below(TLDS.len())]);
    }
    std::fs::write(path, text).unwrap();
}

/// The policy config over all of the shared blocklists plus `synthetic` generated names.
pub fn bench_config(dir: &Path, synthetic: usize) -> PathBuf {
    let data = data_dir();
    let bl = data.join("blocklists");
    let synthetic_path = dir.join("synthetic.txt");
    synthetic_names(synthetic, &synthetic_path);
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/gatehouse.toml"),
    )
    .unwrap();
    // Keep the shipped roles, themes, mapping and local entries; replace where lists live.
    let tail = shipped
        .split("# UT1 folder -> Gatehouse category")
        .nth(1)
        .unwrap();
    let mut cfg = format!(
        "lists_dir = {lists:?}\npublic_suffix_list = \"psl/public_suffix_list.dat\"\n[school]\nname = \"Bench\"\ntimezone = \"Europe/London\"\n[categories.vaping]\ndescription = \"Vaping\"\n",
        lists = repo_lists().display().to_string()
    );
    let mut source = |format: &str, path: &Path, category: Option<&str>, mapping: Option<&str>| {
        let _ = write!(
            cfg,
            "[[source]]\nformat = \"{format}\"\npath = {:?}\n",
            path.display().to_string()
        );
        if let Some(c) = category {
            let _ = writeln!(cfg, "category = \"{c}\"");
        }
        if let Some(m) = mapping {
            let _ = writeln!(cfg, "mapping = \"{m}\"");
        }
    };
    source("squidguard-tree", &bl.join("ut1"), None, Some("ut1"));
    for (file, cat) in [
        ("pornography-hosts", "pornography"),
        ("gambling-hosts", "gambling"),
        ("social-hosts", "social-media"),
        ("snuff-hosts", "violence"),
    ] {
        source(
            "hosts",
            &bl.join("sinfonietta-hostfiles").join(file),
            Some(cat),
            None,
        );
    }
    for (file, cat) in [
        ("crypto-nl.txt", "cryptocurrency"),
        ("drugs-nl.txt", "drugs"),
        ("facebook-nl.txt", "social-media"),
        ("piracy-nl.txt", "piracy"),
        ("ransomware-nl.txt", "malware"),
        ("scam-nl.txt", "phishing"),
        ("tiktok-nl.txt", "social-media"),
        ("torrent-nl.txt", "p2p"),
        ("twitter-nl.txt", "social-media"),
        ("vaping-nl.txt", "vaping"),
        ("whatsapp-nl.txt", "chat"),
        ("youtube-nl.txt", "streaming"),
    ] {
        source(
            "domains",
            &bl.join("blocklistproject/no-ip").join(file),
            Some(cat),
            None,
        );
    }
    source(
        "hosts",
        &bl.join("blocklistproject/format-samples/drugs-hosts.txt"),
        Some("drugs"),
        None,
    );
    source(
        "adblock",
        &bl.join("blocklistproject/format-samples/drugs-adguard.txt"),
        Some("drugs"),
        None,
    );
    source(
        "dnsmasq",
        &bl.join("blocklistproject/format-samples/drugs-dnsmasq.txt"),
        Some("drugs"),
        None,
    );
    for (file, cat) in [
        ("easylist.txt", "advertising"),
        ("easyprivacy.txt", "advertising"),
        ("urlhaus-filter-online.txt", "malware"),
    ] {
        source(
            "adblock",
            &bl.join("adblock-syntax").join(file),
            Some(cat),
            None,
        );
    }
    source("domains", &synthetic_path, Some("web-hosting"), None);
    cfg.push_str("# UT1 folder -> Gatehouse category");
    cfg.push_str(tail);
    let path = dir.join("bench.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// Compiles the bench policy with `synthetic` extra names.
pub fn bench_policy(dir: &Path, synthetic: usize) -> Compiled {
    let path = bench_config(dir, synthetic);
    compile(&ConfigFile::load(&path).unwrap()).unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The kinds of request in the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Hit,
    Miss,
    DeepSubdomain,
    Search,
    UrlList,
}

/// `count` request URLs: 30% listed names, 30% real names that are mostly not listed,
/// 15% deep subdomains, 15% search URLs (some hitting themes), 10% URL-list entries.
pub fn request_mix(count: usize) -> Vec<(Kind, String)> {
    let data = data_dir();
    let mut rng = Lcg(7);
    let listed: Vec<String> = [
        "gambling",
        "games",
        "redirector",
        "shopping",
        "jobsearch",
        "dating",
    ]
    .iter()
    .flat_map(|c| lines(&data.join("blocklists/ut1").join(c).join("domains")))
    .chain(
        lines(&data.join("blocklists/sinfonietta-hostfiles/pornography-hosts"))
            .into_iter()
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned)),
    )
    .collect();
    let clean = lines(&data.join("corpora/hsts-preload-domains.txt"));
    let urls: Vec<String> = ["malware", "phishing", "adult", "games"]
        .iter()
        .flat_map(|c| lines(&data.join("blocklists/ut1").join(c).join("urls")))
        .collect();
    let queries = [
        "weather+tomorrow",
        "how+to+kill+myself",
        "bbc+bitesize+maths",
        "s3lf+h4rm+pics",
        "fractions+ks2+worksheet",
        "free+vpn+for+school",
        "photosynthesis+diagram",
        "join+isis",
        "the+great+gatsby+summary",
        "buy+weed+online",
        "premier+league+table",
        "suicide+prevention+charity",
    ];
    let engines = [
        "https://www.google.co.uk/search?q=",
        "https://www.bing.com/search?q=",
        "https://duckduckgo.com/?q=",
        "https://www.youtube.com/results?search_query=",
    ];
    (0..count)
        .map(|_| match rng.below(100) {
            0..=29 => (
                Kind::Hit,
                format!("https://{}/index.html", listed[rng.below(listed.len())]),
            ),
            30..=59 => (
                Kind::Miss,
                format!("https://www.{}/a/b?c=d", clean[rng.below(clean.len())]),
            ),
            60..=74 => {
                let base = if rng.below(2) == 0 {
                    &listed[rng.below(listed.len())]
                } else {
                    &clean[rng.below(clean.len())]
                };
                (
                    Kind::DeepSubdomain,
                    format!("https://a1.b2.c3.d4.e5.{base}/x"),
                )
            }
            75..=89 => (
                Kind::Search,
                format!(
                    "{}{}&source=hp",
                    engines[rng.below(engines.len())],
                    queries[rng.below(queries.len())]
                ),
            ),
            _ => (
                Kind::UrlList,
                format!("http://{}", urls[rng.below(urls.len())]),
            ),
        })
        .collect()
}

/// Resident set size of this process, in bytes.
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Returns freed heap memory to the system, so RSS shows what is still in use.
pub fn trim_heap() {
    // SAFETY-free: malloc_trim is a plain libc call with no preconditions.
    #[allow(unsafe_code, reason = "libc's malloc_trim has no preconditions")]
    unsafe {
        libc::malloc_trim(0);
    }
}
