//! `gatehouse squid-helper`: Gatehouse's engine behind Squid's `url_rewrite_program`.
//!
//! Reads request lines from stdin and answers each on stdout, in order. Answers are flushed
//! whenever no more input is buffered, so Squid is never kept waiting for a full buffer.

use chrono::Utc;
use gatehouse_rules::squid::{
    encode_component, parse_request, write_broken, write_pass, write_redirect,
};
use gatehouse_rules::{evaluate, Facts, RoleId, Rule, Snapshot, Target, Verdict};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

pub fn run(config: Option<&Path>, fallback_role: Option<&str>) -> anyhow::Result<ExitCode> {
    let snap = match super::load_policy(config) {
        Ok((_, control)) => control.live().load(),
        Err(e) => {
            super::eprint(&format!("error: {e}\nThe policy was not loaded."));
            return Ok(ExitCode::FAILURE);
        }
    };
    let fallback = match fallback_role {
        Some(name) => match snap.role_id(name) {
            Some(id) => Some(id),
            None => {
                super::eprint(&format!(
                    "error: --role {name:?} is not a role of this policy"
                ));
                return Ok(ExitCode::FAILURE);
            }
        },
        None => None,
    };
    let block_page = snap
        .block_page()
        .unwrap_or("http://gatehouse.invalid/blocked")
        .to_owned();
    let mut input = BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut line = Vec::with_capacity(4096);
    let mut location = String::with_capacity(1024);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        answer(
            &snap,
            fallback,
            &block_page,
            text.trim_end(),
            &mut location,
            &mut out,
        )?;
        if input.buffer().is_empty() {
            out.flush()?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn answer(
    snap: &Snapshot,
    fallback: Option<RoleId>,
    block_page: &str,
    line: &str,
    location: &mut String,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let req = match parse_request(line) {
        Ok(r) => r,
        Err((channel, message)) => return write_broken(out, channel, message),
    };
    let role = req
        .client
        .and_then(|ip| snap.network_of(ip))
        .map(|n| n.role)
        .or(fallback);
    let Some(role) = role else {
        block_location(location, block_page, req.url);
        location.push_str("&reason=unknown-network");
        return write_redirect(out, req.channel, location);
    };
    let target = if req.is_connect() {
        Target::Authority(req.url)
    } else {
        Target::Url(req.url)
    };
    let facts = Facts {
        role,
        user: req.user,
        client: req.client,
        at: Utc::now(),
        method: req.method.unwrap_or("GET"),
        target,
    };
    let decision = evaluate(snap, &facts);
    if decision.verdict == Verdict::Allow {
        return write_pass(out, req.channel);
    }
    // Squid has no "continue" page: a warning is a block here. The block page is told
    // enough to explain itself (it can ask `gatehouse explain` for the full reason).
    block_location(location, block_page, req.url);
    location.push_str("&role=");
    encode_component(snap.role(role).map_or("", |r| r.name.as_str()), location);
    location.push_str("&categories=");
    for (i, c) in decision.categories.iter().enumerate() {
        if i > 0 {
            location.push_str("%2C");
        }
        encode_component(snap.category_name(c), location);
    }
    for theme in decision.themes.iter() {
        location.push_str("&theme=");
        encode_component(snap.themes().theme_name(theme), location);
    }
    if decision.rule == Rule::Illegal {
        location.push_str("&reason=illegal");
    }
    write_redirect(out, req.channel, location)
}

/// `block_page?url=<url>` into `location`.
fn block_location(location: &mut String, block_page: &str, url: &str) {
    location.clear();
    location.push_str(block_page);
    location.push_str(if block_page.contains('?') {
        "&url="
    } else {
        "?url="
    });
    encode_component(url, location);
}
