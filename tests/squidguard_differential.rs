//! Differential test: Gatehouse's `squid-helper` and squidGuard 1.6 (Debian's `squidguard`)
//! read the same UT1 lists and answer the same 10,000+ helper lines; for every line both
//! must agree on blocked or passed, or the difference must be one of the deliberate choices
//! listed in `explain_difference`.
//!
//! squidGuard is the oracle here because UT1's `domains`, `urls` and `expressions` files are
//! written for it. `.ci/run` installs it; without it this test fails and says how to install.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an end-to-end test: a failure is a failed test"
)]

mod common;

use common::{lists, run, Workspace};
use std::path::Path;
use std::process::{Command, Stdio};

/// The UT1 folders compared: every folder the shipped policy maps to a category.
fn compared_folders() -> Vec<String> {
    let policy = std::fs::read_to_string(common::repo().join("deploy/gatehouse.toml")).unwrap();
    let mapping = policy.split("[mapping.ut1]").nth(1).unwrap();
    mapping
        .lines()
        .take_while(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once(" = "))
        .filter(|(_, v)| *v != "\"ignore\"")
        .map(|(k, _)| k.trim().to_owned())
        .filter(|k| lists().join("ut1").join(k).is_dir())
        .collect()
}

fn squidguard_binary() -> String {
    for p in ["/usr/bin/squidGuard", "/usr/sbin/squidGuard"] {
        if Path::new(p).exists() {
            return p.to_owned();
        }
    }
    panic!("squidGuard is not installed: `apt-get install squidguard` (the test script does this)");
}

/// A small deterministic generator, so the URL set is the same on every run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() as usize) % items.len()]
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect()
        })
        .unwrap_or_default()
}

/// The helper lines: hits, their subdomains and `www.` forms, siblings that must pass,
/// URL-list entries with longer and shorter paths, IP entries, real names from the HSTS
/// preload corpus (mostly clean), and CONNECT lines.
fn helper_lines(folders: &[String]) -> Vec<String> {
    let mut rng = Lcg(0x5eed);
    let mut domains = Vec::new();
    let mut urls = Vec::new();
    for f in folders {
        domains.extend(read_lines(&lists().join("ut1").join(f).join("domains")));
        urls.extend(read_lines(&lists().join("ut1").join(f).join("urls")));
    }
    let (ips, names): (Vec<String>, Vec<String>) = domains
        .into_iter()
        .partition(|d| d.parse::<std::net::Ipv4Addr>().is_ok());
    let corpus = read_lines(&common::repo().join("tests/fixtures/hsts-sample.txt"));
    let mut out = Vec::new();
    let client = "10.0.0.1/- - GET";
    for _ in 0..3000 {
        let d = rng.pick(&names);
        let line = match rng.next() % 6 {
            0 => format!("http://{d}/"),
            1 => format!("http://www.{d}/index.html"),
            2 => format!("https://a.b.{d}/x?y=1"),
            3 => format!("http://x{d}/"),
            4 => format!(
                "http://{}/",
                d.split_once('.').map_or(d.as_str(), |(_, rest)| rest)
            ),
            _ => format!("http://{}/Path", d.to_uppercase()),
        };
        out.push(format!("{line} {client}"));
    }
    for _ in 0..2500 {
        let u = rng.pick(&urls);
        let line = match rng.next() % 5 {
            0 => format!("http://{u}"),
            1 => format!("http://{u}more/stuff"),
            2 => format!("http://www.{u}"),
            3 => format!("https://{}", &u[..u.len() - 1]),
            _ => format!("http://sub.{u}"),
        };
        out.push(format!("{line} {client}"));
    }
    for _ in 0..1000 {
        out.push(format!("http://{}/ {client}", rng.pick(&ips)));
    }
    for _ in 0..3000 {
        out.push(format!("http://{}/ {client}", rng.pick(&corpus)));
    }
    for _ in 0..700 {
        let d = if rng.next() % 2 == 0 {
            rng.pick(&names)
        } else {
            rng.pick(&corpus)
        };
        out.push(format!("{d}:443 10.0.0.1/- - CONNECT"));
    }
    out
}

fn squidguard_answers(folders: &[String], lines: &str) -> Vec<bool> {
    let ws = Workspace::new();
    let db = ws.path("db");
    let mut conf = format!(
        "dbhome {}\nlogdir {}\n",
        db.display(),
        ws.path("log").display()
    );
    let mut dests = Vec::new();
    std::fs::create_dir_all(ws.path("log")).unwrap();
    for f in folders {
        let src = lists().join("ut1").join(f);
        let dst = db.join(f);
        std::fs::create_dir_all(&dst).unwrap();
        let mut body = String::new();
        for (file, kind) in [
            ("domains", "domainlist"),
            ("urls", "urllist"),
            ("expressions", "expressionlist"),
        ] {
            if src.join(file).is_file() {
                std::fs::copy(src.join(file), dst.join(file)).unwrap();
                body.push_str(&format!("  {kind} {f}/{file}\n"));
            }
        }
        let name = f.replace('-', "_");
        conf.push_str(&format!("dest {name} {{\n{body}}}\n"));
        dests.push(format!("!{name}"));
    }
    conf.push_str(&format!(
        "acl {{\n  default {{\n    pass {} all\n    redirect http://blocked.invalid/\n  }}\n}}\n",
        dests.join(" ")
    ));
    squidguard_run(&ws, &conf, lines)
}

/// Writes `conf`, builds squidGuard's databases, feeds it `lines`; true where it blocked.
fn squidguard_run(ws: &Workspace, conf: &str, lines: &str) -> Vec<bool> {
    let conf_path = ws.write("squidGuard.conf", conf.as_bytes());
    let sg = squidguard_binary();
    let built = Command::new(&sg)
        .args(["-c", conf_path.to_str().unwrap(), "-C", "all"])
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "squidGuard -C all: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let mut child = Command::new(&sg)
        .args(["-c", conf_path.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let text = lines.to_owned();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(text.as_bytes()).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.starts_with("OK"))
        .collect()
}

fn gatehouse_answers(folders: &[String], lines: &str) -> Vec<bool> {
    let ws = Workspace::new();
    let mut mapping = String::from("[mapping.ut1]\n");
    for entry in std::fs::read_dir(lists().join("ut1")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let target = if folders.contains(&name) {
            "games"
        } else {
            "ignore"
        };
        mapping.push_str(&format!("{name:?} = \"{target}\"\n"));
    }
    let config = ws.config(&format!(
        "[[network]]\ncidr = \"10.0.0.0/8\"\nrole = \"pupil\"\n[[source]]\nformat = \"squidguard-tree\"\npath = \"ut1\"\nmapping = \"ut1\"\n{mapping}[roles.pupil]\ndefault = \"allow\"\ncategories = {{ games = \"block\" }}\n"
    ));
    let out = run(
        &["squid-helper", "--config", config.to_str().unwrap()],
        lines,
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.starts_with("OK"))
        .collect()
}

/// The request as squidGuard compares it with URL lists: host without a leading `www`-like
/// label and without port, then path and query, all lower case.
fn url_request(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let (host, path) = rest.split_at(rest.find(['/', '#', '?']).unwrap_or(rest.len()));
    let host = host.split(':').next().unwrap_or(host).to_lowercase();
    let host = gatehouse_rules::index::strip_www_label(&host)
        .unwrap_or(&host)
        .to_owned();
    format!("{host}{}", path.to_lowercase())
}

/// The URL-list entry (lower-cased) that is a prefix of the line's request, if any.
fn listed_prefix(line: &str, keys: &[String]) -> Option<String> {
    let request = url_request(line.split(' ').next().unwrap_or(""));
    keys.iter()
        .map(|k| k.to_lowercase())
        .filter(|k| request.starts_with(k.as_str()))
        .max_by_key(|k| k.len())
}

/// Runs squidGuard once with one single-entry URL list per line (`(line, entry)`), and
/// returns, per line, whether squidGuard blocked it.
fn squidguard_single_entries(pairs: &[(String, String)]) -> Vec<bool> {
    let ws = Workspace::new();
    let db = ws.path("db");
    std::fs::create_dir_all(ws.path("log")).unwrap();
    let mut conf = format!(
        "dbhome {}\nlogdir {}\n",
        db.display(),
        ws.path("log").display()
    );
    let mut dests = Vec::new();
    for (i, (_, entry)) in pairs.iter().enumerate() {
        ws.write(&format!("db/e{i}/urls"), format!("{entry}\n").as_bytes());
        conf.push_str(&format!("dest e{i} {{\n  urllist e{i}/urls\n}}\n"));
        dests.push(format!("!e{i}"));
    }
    conf.push_str(&format!(
        "acl {{\n  default {{\n    pass {} all\n    redirect http://blocked.invalid/\n  }}\n}}\n",
        dests.join(" ")
    ));
    let lines: Vec<String> = pairs.iter().map(|(l, _)| l.clone()).collect();
    squidguard_run(&ws, &conf, &(lines.join("\n") + "\n"))
}

#[test]
fn gatehouse_and_squidguard_agree_on_ut1() {
    let folders = compared_folders();
    assert!(folders.len() > 50, "{folders:?}");
    let lines = helper_lines(&folders);
    assert!(lines.len() >= 10_000);
    let input = lines.join("\n") + "\n";
    let sg = squidguard_answers(&folders, &input);
    let gh = gatehouse_answers(&folders, &input);
    assert_eq!(sg.len(), lines.len(), "squidGuard answered every line");
    assert_eq!(gh.len(), lines.len(), "Gatehouse answered every line");
    let mut keys = Vec::new();
    for f in &folders {
        keys.extend(read_lines(&lists().join("ut1").join(f).join("urls")));
    }
    // The one deliberate difference: squidGuard's URL-list lookup (a Berkeley DB B-tree with
    // a prefix comparison) compares the request with one neighbouring entry only, so it
    // misses a listed prefix when other entries of the same host sort near the request
    // (`/app` for `/app/io.htm` beside `/app/io.html`), and it never matches an entry with a
    // capital letter (it lowercases the request, not the list). Gatehouse tries every prefix
    // listed for the host, without case. Each such line is confirmed against squidGuard
    // itself: given that one entry alone, squidGuard blocks the line too.
    let mut candidates = Vec::new();
    let mut unexplained = Vec::new();
    for ((line, &s), &g) in lines.iter().zip(&sg).zip(&gh) {
        if s == g {
            continue;
        }
        match (g, listed_prefix(line, &keys)) {
            (true, Some(entry)) => candidates.push((line.clone(), entry)),
            _ => unexplained.push(format!(
                "{line} gatehouse={} squidguard={}",
                if g { "block" } else { "pass" },
                if s { "block" } else { "pass" }
            )),
        }
    }
    //
    // A second one: an entry holding a percent escape or a doubled slash. squidGuard decodes
    // escapes and folds `//` in the request but not in its list, so such an entry never
    // matches there, even alone; Gatehouse normalises both sides the same way.
    let confirmed = squidguard_single_entries(&candidates);
    let mut escaped = 0;
    for ((line, entry), ok) in candidates.iter().zip(&confirmed) {
        if *ok {
            continue;
        }
        if entry.contains('%') || entry.contains("//") {
            escaped += 1;
        } else {
            unexplained.push(format!("{line} gatehouse=block squidguard=pass, and squidGuard with only {entry:?} also passes it"));
        }
    }
    let explained = confirmed.iter().filter(|&&ok| ok).count();
    let blocked = sg.iter().filter(|&&b| b).count();
    println!(
        "{} lines, squidGuard blocked {blocked}; differences: {explained} where squidGuard's URL lookup misses a listed prefix, {escaped} where the entry is escaped",
        lines.len()
    );
    assert!(
        blocked > 3000 && blocked < lines.len() - 2000,
        "the URL mix has hits and misses: {blocked}"
    );
    assert!(
        unexplained.is_empty(),
        "{} unexplained differences:\n{}",
        unexplained.len(),
        unexplained
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
