//! From configuration to [`Snapshot`]: every check, every list read, every index built.
//!
//! Compilation is all-or-nothing: a configuration that says something wrong is refused
//! whole with an error that names the file and line. Broken lines inside list files are not
//! errors: they are skipped, counted and reported in the [`LoadReport`].

use crate::category::{self, CategoryId, CategorySet, MAX_CATEGORIES};
use crate::config::{Action, ActionSpec, ConfigFile, Illegal, Source};
use crate::error::{Result, RulesError};
use crate::host::{name_hash, Host};
use crate::index::{
    CatsetInterner, ListIndex, LocalEntry, LocalIndex, LocalKind, RegexIndex, UrlIndexBuilder,
};
use crate::lists::phrases::{theme_line, weighted_line, ThemeLine, WeightedLine};
use crate::lists::{decode, parse_line, Entry, FileReport, LineOutcome, ListFormat};
use crate::policy::{parse_days, parse_time, RoleId, RolePolicy, TimeBand};
use crate::psl::PublicSuffixList;
use crate::search::{ThemeMatcher, ThemeMatcherBuilder};
use crate::snapshot::{NetworkRule, Snapshot};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// At most this many regular expressions in one policy: each one costs time on every request.
pub const MAX_REGEXES: usize = 1000;

/// What loading a policy read, for `gatehouse check` and the admin page.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadReport {
    pub config: PathBuf,
    pub files: Vec<FileReport>,
    pub categories: Vec<CategoryCount>,
    pub illegal_entries: usize,
    pub distinct_domains: usize,
    pub url_prefixes: usize,
    pub regexes: usize,
    pub themes: Vec<ThemeCount>,
    pub roles: Vec<String>,
    pub warnings: Vec<String>,
}

impl LoadReport {
    pub fn skipped_lines(&self) -> usize {
        self.files.iter().map(|f| f.skipped).sum()
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CategoryCount {
    pub name: String,
    pub domains: usize,
    pub urls: usize,
    pub regexes: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ThemeCount {
    pub name: String,
    pub phrases: usize,
}

/// A compiled policy and the report of how it was loaded.
#[derive(Debug)]
pub struct Compiled {
    pub snapshot: Snapshot,
    pub report: LoadReport,
}

/// Reads, checks and compiles a configuration file and every list it names.
pub fn load(path: &Path) -> Result<Compiled> {
    compile(&ConfigFile::load(path)?)
}

/// Compiles a parsed configuration.
pub fn compile(file: &ConfigFile) -> Result<Compiled> {
    let cfg = &file.config;
    let dir = file.lists_dir();
    let mut report = LoadReport {
        config: file.path.clone(),
        ..LoadReport::default()
    };

    let tz: chrono_tz::Tz = cfg.school.timezone.get_ref().parse().map_err(|_| {
        file.invalid(
            cfg.school.timezone.span().start,
            "school.timezone",
            format!(
                "{:?} is not an IANA time zone (e.g. \"Europe/London\")",
                cfg.school.timezone.get_ref()
            ),
        )
    })?;
    let categories = taxonomy(file)?;
    let category_id = |name: &str| -> Option<CategoryId> {
        categories
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| CategoryId(i as u8))
    };
    let illegal_cfg = illegal_section(file)?;
    let psl = match &cfg.public_suffix_list {
        Some(p) => {
            let path = dir.join(p);
            let text =
                std::fs::read_to_string(&path).map_err(|source| RulesError::Io { path, source })?;
            Some(PublicSuffixList::parse(&text))
        }
        None => None,
    };
    check_mappings(file, &category_id)?;

    // Category lists.
    let mut sink = ListSink::new(categories.len());
    for source in &cfg.sources {
        load_source(
            file,
            &dir,
            source,
            &category_id,
            psl.as_ref(),
            &mut sink,
            &mut report,
        )?;
    }
    report.categories = categories
        .iter()
        .zip(&sink.counts)
        .map(|((name, _), c)| CategoryCount {
            name: name.clone(),
            ..c.clone()
        })
        .collect();
    let lists = sink.finish()?;
    report.distinct_domains = lists.domains.len();
    report.url_prefixes = lists.urls.len();
    report.regexes = lists.regexes.as_ref().map_or(0, RegexIndex::len);

    // The illegal tier.
    let mut illegal_sink = ListSink::new(1);
    for source in &illegal_cfg.sources {
        let path = dir.join(&source.path);
        let set = CategorySet(1);
        load_flat_or_folder(
            &path,
            source.format,
            set,
            "illegal tier",
            psl.as_ref(),
            &mut illegal_sink,
            &mut report,
        )?;
    }
    report.illegal_entries = illegal_sink
        .counts
        .iter()
        .map(|c| c.domains + c.urls + c.regexes)
        .sum();
    let illegal = illegal_sink.finish()?;

    let themes = compile_themes(file, &dir, &mut report)?;
    let ai = compile_ai_services(file)?;
    let accounts = compile_accounts(file)?;
    let no_decrypt = compile_no_decrypt(file)?;
    let roles = compile_roles(
        file,
        &category_id,
        &themes,
        categories.len(),
        &RoleContext {
            ai: &ai,
            accounts: &accounts,
            no_decrypt: &no_decrypt,
        },
    )?;
    report.roles = roles.iter().map(|r| r.name.clone()).collect();
    let role_id = |name: &str| {
        roles
            .iter()
            .position(|r| r.name == name)
            .map(|i| RoleId(i as u8))
    };
    let local = compile_local(file, &role_id, &illegal)?;
    let networks = compile_networks(file, &role_id)?;

    let snapshot = Snapshot {
        school_name: cfg.school.name.clone(),
        block_page: cfg.school.block_page.clone(),
        tz,
        categories,
        lists,
        illegal,
        local,
        themes,
        roles,
        networks,
        psl,
        no_decrypt,
        ai,
        accounts,
    };
    Ok(Compiled { snapshot, report })
}

/// `[[ai_service]]`: services added to the built-in table.
fn compile_ai_services(file: &ConfigFile) -> Result<crate::ai::AiServices> {
    let mut added = Vec::new();
    for def in &file.config.ai_services {
        let d = def.get_ref();
        added.push(crate::ai::AiService {
            name: d.name.clone(),
            label: d.label.clone().unwrap_or_else(|| d.name.clone()),
            hosts: d.hosts.clone(),
            chat_paths: d.chat_paths.clone(),
            answer_keys: d.answer_keys.clone(),
            websocket: d.websocket,
        });
    }
    crate::ai::AiServices::new(added).map_err(|m| {
        let at = file
            .config
            .ai_services
            .first()
            .map_or(0, |d| d.span().start);
        file.invalid(at, "ai_service", m)
    })
}

/// `[accounts]`: the school's own Microsoft and Google accounts.
fn compile_accounts(file: &ConfigFile) -> Result<crate::accounts::SchoolAccounts> {
    match &file.config.accounts {
        None => Ok(crate::accounts::SchoolAccounts::default()),
        Some(def) => crate::accounts::SchoolAccounts::new(def.get_ref())
            .map_err(|(f, m)| file.invalid(def.span().start, format!("accounts.{f}"), m)),
    }
}

/// What a role's settings are checked against besides categories and themes.
struct RoleContext<'a> {
    ai: &'a crate::ai::AiServices,
    accounts: &'a crate::accounts::SchoolAccounts,
    no_decrypt: &'a crate::snapshot::NoDecrypt,
}

/// `[proxy] no_decrypt`: hosts tunnelled, never decrypted (banking, health, pinned apps).
fn compile_no_decrypt(file: &ConfigFile) -> Result<crate::snapshot::NoDecrypt> {
    let at = file.text.find("no_decrypt").unwrap_or(0);
    let Some(value) = file.config.proxy.as_ref().and_then(|p| p.get("no_decrypt")) else {
        return Ok(crate::snapshot::NoDecrypt::default());
    };
    let entries: Option<Vec<String>> = value
        .as_array()
        .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect());
    let Some(entries) = entries else {
        return Err(file.invalid(at, "proxy.no_decrypt", "expected a list of host names"));
    };
    crate::snapshot::NoDecrypt::new(&entries).map_err(|m| file.invalid(at, "proxy.no_decrypt", m))
}

fn taxonomy(file: &ConfigFile) -> Result<Vec<(String, String)>> {
    let mut all: Vec<(String, String)> = category::BUILTIN
        .iter()
        .map(|(n, d)| ((*n).to_owned(), (*d).to_owned()))
        .collect();
    for (name, def) in &file.config.categories {
        let at = def.span().start;
        let field = format!("categories.{name}");
        if name == "illegal" {
            return Err(file.invalid(
                at,
                field,
                "\"illegal\" is the illegal tier, not a category: list its sources under [illegal]",
            ));
        }
        if !category::valid_name(name) {
            return Err(file.invalid(
                at,
                field,
                "category names use lower-case letters, digits and '-'",
            ));
        }
        if all.iter().any(|(n, _)| n == name) {
            return Err(file.invalid(at, field, "this category is built in already"));
        }
        all.push((name.clone(), def.get_ref().description.clone()));
    }
    if all.len() > MAX_CATEGORIES {
        return Err(RulesError::Limit {
            what: "categories".into(),
            message: format!("{} defined, at most {MAX_CATEGORIES}", all.len()),
        });
    }
    Ok(all)
}

/// `[illegal]` takes only `sources`: anything else is an attempt to weaken the tier.
fn illegal_section(file: &ConfigFile) -> Result<Illegal> {
    let Some(section) = &file.config.illegal else {
        return Ok(Illegal {
            sources: Vec::new(),
        });
    };
    let at = section.span().start;
    for key in section.get_ref().keys() {
        if key != "sources" {
            return Err(file.invalid(
                at,
                format!("illegal.{key}"),
                "the illegal tier blocks for every role; it cannot be switched off, allowed, warned, exempted or given another action (it takes only `sources`)",
            ));
        }
    }
    let illegal: Illegal = toml::Value::Table(section.get_ref().clone())
        .try_into()
        .map_err(|e: toml::de::Error| {
            file.invalid(at, "illegal.sources", e.message().trim().to_owned())
        })?;
    for s in &illegal.sources {
        if s.category.is_some() || s.mapping.is_some() || s.format == ListFormat::SquidguardTree {
            return Err(file.invalid(at, "illegal.sources", "illegal-tier sources are flat lists or squidguard folders, with no category or mapping"));
        }
    }
    Ok(illegal)
}

fn check_mappings(
    file: &ConfigFile,
    category_id: &impl Fn(&str) -> Option<CategoryId>,
) -> Result<()> {
    for (table, entries) in &file.config.mapping {
        for (list, target) in entries {
            let t = target.get_ref();
            if t == "illegal" {
                return Err(file.invalid(
                    target.span().start,
                    format!("mapping.{table}.{list}"),
                    "imported lists cannot feed the illegal tier: list its files under [illegal]",
                ));
            }
            if t != "ignore" && category_id(t).is_none() {
                return Err(file.invalid(
                    target.span().start,
                    format!("mapping.{table}.{list}"),
                    format!("{t:?} is not a category (or \"ignore\")"),
                ));
            }
        }
    }
    Ok(())
}

/// Entries collected from lists, before indexing.
struct ListSink {
    interner: CatsetInterner,
    domains: Vec<(u64, u16)>,
    urls: UrlIndexBuilder,
    regexes: Vec<(String, u16, String)>,
    counts: Vec<CategoryCount>,
}

impl ListSink {
    fn new(categories: usize) -> Self {
        ListSink {
            interner: CatsetInterner::default(),
            domains: Vec::new(),
            urls: UrlIndexBuilder::default(),
            regexes: Vec::new(),
            counts: vec![CategoryCount::default(); categories],
        }
    }

    fn finish(mut self) -> Result<ListIndex> {
        if self.regexes.len() > MAX_REGEXES {
            return Err(RulesError::Limit {
                what: "regular expressions".into(),
                message: format!(
                    "{} listed, at most {MAX_REGEXES}: each one is tried on every request",
                    self.regexes.len()
                ),
            });
        }
        let regexes = if self.regexes.is_empty() {
            None
        } else {
            Some(
                RegexIndex::build(self.regexes).map_err(|e| RulesError::Limit {
                    what: "regular expressions".into(),
                    message: e.to_string(),
                })?,
            )
        };
        let interner = &mut self.interner;
        let empty = interner.intern(CategorySet::EMPTY).unwrap_or(0);
        let flagged = empty | crate::index::HAS_URLS;
        self.domains
            .extend(self.urls.host_hashes().map(|h| (h, flagged)));
        let domains =
            crate::index::HashIndex::build(self.domains, |a, b| *a = interner.union(*a, b));
        let urls = self.urls.build(|a, b| interner.union(a, b));
        Ok(ListIndex {
            domains,
            urls,
            regexes,
            catsets: self.interner.into_sets(),
        })
    }
}

fn load_source(
    file: &ConfigFile,
    dir: &Path,
    source: &Spanned<Source>,
    category_id: &impl Fn(&str) -> Option<CategoryId>,
    psl: Option<&PublicSuffixList>,
    sink: &mut ListSink,
    report: &mut LoadReport,
) -> Result<()> {
    let at = source.span().start;
    let s = source.get_ref();
    let path = dir.join(&s.path);
    if s.format == ListFormat::SquidguardTree {
        let Some(table_name) = &s.mapping else {
            return Err(file.invalid(at, "source.mapping", "a squidguard-tree source needs `mapping`: the table from its folder names to categories"));
        };
        let Some(table) = file.config.mapping.get(table_name) else {
            return Err(file.invalid(
                at,
                "source.mapping",
                format!("there is no [mapping.{table_name}]"),
            ));
        };
        return load_tree(&path, table_name, table, category_id, psl, sink, report);
    }
    let Some(name) = &s.category else {
        return Err(file.invalid(
            at,
            "source.category",
            format!("a {} source needs `category`", s.format.name()),
        ));
    };
    if name == "illegal" {
        return Err(file.invalid(
            at,
            "source.category",
            "illegal-tier lists go under [illegal] sources, where no role can allow them",
        ));
    }
    let Some(id) = category_id(name) else {
        return Err(file.invalid(at, "source.category", format!("{name:?} is not a category")));
    };
    load_flat_or_folder(
        &path,
        s.format,
        CategorySet::one(id),
        name,
        psl,
        sink,
        report,
    )
}

fn load_tree(
    path: &Path,
    table_name: &str,
    table: &BTreeMap<String, Spanned<String>>,
    category_id: &impl Fn(&str) -> Option<CategoryId>,
    psl: Option<&PublicSuffixList>,
    sink: &mut ListSink,
    report: &mut LoadReport,
) -> Result<()> {
    let entries = std::fs::read_dir(path).map_err(|source| RulesError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut folders: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    folders.sort();
    for (name, folder) in folders {
        match table.get(&name).map(|t| t.get_ref().as_str()) {
            None => report.warnings.push(format!(
                "{}: no entry for {name:?} in [mapping.{table_name}]; not loaded",
                folder.display()
            )),
            Some("ignore") => {}
            Some(target) => {
                if let Some(id) = category_id(target) {
                    load_flat_or_folder(
                        &folder,
                        ListFormat::Squidguard,
                        CategorySet::one(id),
                        target,
                        psl,
                        sink,
                        report,
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// squidGuard folder files and their formats.
const SQUIDGUARD_FILES: [(&str, ListFormat); 3] = [
    ("domains", ListFormat::Domains),
    ("urls", ListFormat::Urls),
    ("expressions", ListFormat::Regex),
];

fn load_flat_or_folder(
    path: &Path,
    format: ListFormat,
    set: CategorySet,
    target: &str,
    psl: Option<&PublicSuffixList>,
    sink: &mut ListSink,
    report: &mut LoadReport,
) -> Result<()> {
    let id = sink.interner.intern(set).ok_or_else(|| RulesError::Limit {
        what: "category sets".into(),
        message: "more than 65,536 distinct combinations".into(),
    })?;
    let category = set.iter().next();
    if format != ListFormat::Squidguard {
        return load_file(path, format, id, category, target, psl, sink, report);
    }
    if !path.is_dir() {
        return Err(RulesError::Source {
            path: path.to_owned(),
            message: "a squidguard source must be a folder".into(),
        });
    }
    let mut found = false;
    for (name, fmt) in SQUIDGUARD_FILES {
        let file = path.join(name);
        if file.is_file() {
            found = true;
            load_file(&file, fmt, id, category, target, psl, sink, report)?;
        }
    }
    if !found {
        report.warnings.push(format!(
            "{}: no domains, urls or expressions file",
            path.display()
        ));
    }
    Ok(())
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site per source kind; a struct would only rename them"
)]
fn load_file(
    path: &Path,
    format: ListFormat,
    catset: u16,
    category: Option<CategoryId>,
    target: &str,
    psl: Option<&PublicSuffixList>,
    sink: &mut ListSink,
    report: &mut LoadReport,
) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|source| RulesError::Io {
        path: path.to_owned(),
        source,
    })?;
    let decoded = decode(&bytes);
    let mut rep = FileReport::new(path.to_owned(), format, target.to_owned());
    rep.warnings.extend(decoded.warning);
    let (mut domains, mut urls, mut regexes) = (0, 0, 0);
    for (i, line) in decoded.text.lines().enumerate() {
        let mut bad: Option<String> = None;
        let outcome = parse_line(format, line, &mut |entry| match entry {
            Entry::Domain(name) => {
                match suffix_check(psl, &name) {
                    SuffixCheck::Refuse => {
                        bad = Some(format!("{name:?} is a public suffix for everyone's sites: it would block all of them"));
                    }
                    check => {
                        if check == SuffixCheck::Warn
                            && rep.warnings.len() < crate::lists::KEPT_PROBLEMS
                        {
                            rep.warnings.push(format!("line {}: {name:?} is a public suffix: every site under it is listed", i + 1));
                        }
                        sink.domains.push((name_hash(name.as_bytes()), catset));
                        domains += 1;
                    }
                }
            }
            Entry::Url { host, path: p } => {
                if sink.urls.add(&host, p, catset) {
                    urls += 1;
                } else {
                    bad = Some(format!(
                        "the path is longer than {} bytes",
                        crate::index::url::MAX_PREFIX_LEN
                    ));
                }
            }
            Entry::Regex(rx) => match regex::RegexBuilder::new(rx).size_limit(1 << 20).build() {
                Ok(_) => {
                    sink.regexes.push((
                        rx.to_owned(),
                        catset,
                        format!("{}:{}", path.display(), i + 1),
                    ));
                    regexes += 1;
                }
                Err(e) => {
                    bad = Some(format!(
                        "bad regular expression: {}",
                        e.to_string().lines().last().unwrap_or("")
                    ))
                }
            },
        });
        match outcome {
            LineOutcome::Used(_) => match bad {
                Some(message) => rep.skip(i + 1, message),
                None => rep.entries += 1,
            },
            LineOutcome::Blank => {}
            LineOutcome::Ignored(_) => rep.ignored += 1,
            LineOutcome::Bad(message) => rep.skip(i + 1, message),
        }
    }
    let counts = category.and_then(|c| sink.counts.get_mut(c.0 as usize));
    if let Some(c) = counts {
        c.domains += domains;
        c.urls += urls;
        c.regexes += regexes;
    } else if let Some(c) = sink.counts.first_mut() {
        c.domains += domains;
        c.urls += urls;
        c.regexes += regexes;
    }
    report.files.push(rep);
    Ok(())
}

/// What to do with a list entry that is a public suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SuffixCheck {
    Fine,
    /// A specialised suffix (`bet.br`, `game.tw`): listing it is usually deliberate.
    Warn,
    /// A general-purpose suffix (`co.uk`, `com.au`, `sch.uk`): a line like that is a mistake
    /// that would block a country's sites.
    Refuse,
}

/// Second-level labels under which anyone registers anything.
const GENERAL_SECOND_LEVELS: &[&str] = &[
    "co", "com", "org", "net", "ac", "gov", "edu", "sch", "nhs", "ltd", "plc", "me", "gob", "ne",
    "or", "go", "biz", "info", "nom", "mil", "int",
];

fn suffix_check(psl: Option<&PublicSuffixList>, name: &str) -> SuffixCheck {
    match psl {
        Some(p) if p.is_icann_suffix(name) => {
            let first = name.split('.').next().unwrap_or("");
            if GENERAL_SECOND_LEVELS.contains(&first) {
                SuffixCheck::Refuse
            } else {
                SuffixCheck::Warn
            }
        }
        _ => SuffixCheck::Fine,
    }
}

fn compile_themes(file: &ConfigFile, dir: &Path, report: &mut LoadReport) -> Result<ThemeMatcher> {
    let mut b = ThemeMatcherBuilder::default();
    let mut context_dirs: Vec<std::path::PathBuf> = Vec::new();
    for (name, def) in &file.config.themes {
        let at = def.span().start;
        if !category::valid_name(name) {
            return Err(file.invalid(
                at,
                format!("themes.{name}"),
                "theme names use lower-case letters, digits and '-'",
            ));
        }
        let theme = b
            .theme(name)
            .map_err(|m| file.invalid(at, format!("themes.{name}"), m))?;
        let def = def.get_ref();
        let source = match (&def.file, def.weighted.is_empty()) {
            (Some(f), _) => Some(dir.join(f)),
            (None, true) => {
                let folder = dir.join("themes").join(name);
                if !folder.is_dir() {
                    return Err(file.invalid(
                        at,
                        format!("themes.{name}"),
                        format!(
                            "a theme needs a `file`, `weighted` lists, or the folder {}",
                            folder.display()
                        ),
                    ));
                }
                Some(folder)
            }
            (None, false) => None,
        };
        if def.disclosure {
            b.never_lower(theme);
        }
        if def.help {
            b.offer_help(theme);
        }
        if let Some(path) = source {
            if path.is_dir() {
                for f in theme_files(&path)? {
                    load_theme_file(&f, name, Some(theme), &mut b, report)?;
                }
                if let Some(parent) = path.parent() {
                    if !context_dirs.contains(&parent.to_path_buf()) {
                        context_dirs.push(parent.to_path_buf());
                    }
                }
            } else {
                load_theme_file(&path, name, Some(theme), &mut b, report)?;
                // A single file in a theme folder still reads the context beside the folders.
                if let Some(themes_dir) = path.parent().and_then(Path::parent) {
                    if !context_dirs.contains(&themes_dir.to_path_buf()) {
                        context_dirs.push(themes_dir.to_path_buf());
                    }
                }
            }
        }
        if let Some(t) = def.threshold {
            b.set_threshold(theme, t);
        }
        for w in &def.weighted {
            b.set_threshold(theme, w.threshold);
            let mut rep = FileReport::new(
                dir.join(&w.path),
                ListFormat::Domains,
                format!("theme {name}"),
            );
            rep.format = "e2guardian-weighted".into();
            load_weighted(
                &dir.join(&w.path),
                dir,
                theme,
                w.threshold,
                &mut b,
                &mut rep,
                0,
            )?;
            report.files.push(rep);
        }
    }
    // Context words (`themes/_context/<lang>.txt`) and the words of each language that
    // are never slips (`themes/_words/<lang>.txt`) beside the theme folders.
    for parent in context_dirs {
        let context = parent.join("_context");
        if context.is_dir() {
            for f in theme_files(&context)? {
                load_theme_file(&f, "context", None, &mut b, report)?;
            }
        }
        let words = parent.join("_words");
        if words.is_dir() {
            for f in theme_files(&words)? {
                load_word_file(&f, &mut b, report)?;
            }
        }
        // Learned weights (`themes/_model/*.tsv`), read after every class is known.
        let model = parent.join("_model");
        if model.is_dir() {
            for f in files_ending(&model, "tsv")? {
                load_model_file(&f, &mut b, report)?;
            }
        }
    }
    // A class with no words (its words live in a file this policy does not read) leaves
    // its combinations unable to fire: said in the report, not fatal.
    for empty in b.empty_classes() {
        if let Some(last) = report.files.iter_mut().rev().find(|f| f.format == "theme") {
            last.warnings.push(format!(
                "the word class {{{empty}}} is used by a combination but has no words (`@{empty}: ...`): those combinations never fire"
            ));
        }
    }
    let matcher = b.build().map_err(|message| RulesError::Limit {
        what: "themes".into(),
        message,
    })?;
    report.themes = matcher
        .theme_names()
        .iter()
        .enumerate()
        .map(|(i, n)| ThemeCount {
            name: n.clone(),
            phrases: matcher.phrase_count(crate::search::ThemeId(i as u8)),
        })
        .collect();
    Ok(matcher)
}

/// The `.txt` files of a theme folder, by name (so the order of a reload is the same).
fn theme_files(folder: &Path) -> Result<Vec<std::path::PathBuf>> {
    files_ending(folder, "txt")
}

/// The files of a folder with the extension `ext`, by name.
fn files_ending(folder: &Path, ext: &str) -> Result<Vec<std::path::PathBuf>> {
    let io = |source| RulesError::Io {
        path: folder.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == ext) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads one theme file (`theme` is `None` for a context file, which may only add words to
/// classes). Its language is the file name up to the first `-` (`en-slang.txt` is `en`).
fn load_theme_file(
    path: &Path,
    name: &str,
    theme: Option<crate::search::ThemeId>,
    b: &mut ThemeMatcherBuilder,
    report: &mut LoadReport,
) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|source| RulesError::Io {
        path: path.to_owned(),
        source,
    })?;
    let decoded = decode(&bytes);
    let mut rep = FileReport::new(
        path.to_owned(),
        ListFormat::Domains,
        format!("theme {name}"),
    );
    rep.format = "theme".into();
    rep.warnings.extend(decoded.warning);
    let lang = path
        .file_stem()
        .and_then(|s| s.to_str())
        .map_or("", |s| s.split('-').next().unwrap_or(s));
    b.set_language(lang);
    let no_theme =
        || Err("a context file may only hold `@class:` lines and `!exceptions`".to_owned());
    for (i, line) in decoded.text.lines().enumerate() {
        let added = match (theme_line(line), theme) {
            (Ok(None), _) => continue,
            (Ok(Some(ThemeLine::Class { name, words })), _) => words
                .iter()
                .try_for_each(|&(w, prefix)| b.class_word(name, w, prefix)),
            (
                Ok(Some(
                    ThemeLine::Phrase(_) | ThemeLine::Prefix(_) | ThemeLine::Combination { .. },
                )),
                None,
            ) => no_theme(),
            (Ok(Some(ThemeLine::Phrase(p))), Some(t)) => b.phrase(t, p, false).map(|_| ()),
            (Ok(Some(ThemeLine::Prefix(p))), Some(t)) => b.phrase(t, p, true).map(|_| ()),
            (Ok(Some(ThemeLine::Exception(p))), t) => b.exception(t, p),
            (
                Ok(Some(ThemeLine::Combination {
                    points,
                    near,
                    kept,
                    parts,
                })),
                Some(t),
            ) => b.combination(t, &parts, points, near, kept),
            (Err(e), _) => Err(e),
        };
        match added {
            Ok(()) => rep.entries += 1,
            Err(e) => rep.skip(i + 1, e),
        }
    }
    report.files.push(rep);
    Ok(())
}

/// Loads learned weights (written by `gatehouse train-themes`): tab-separated lines
/// `bias THEME VALUE`, `threshold THEME VALUE` and `KIND FEATURE THEME WEIGHT` (kind
/// `word`, `pair`, `start` or `class`). Weights for themes or classes this policy does not
/// have are left out, and said once.
fn load_model_file(
    path: &Path,
    b: &mut ThemeMatcherBuilder,
    report: &mut LoadReport,
) -> Result<()> {
    use crate::search::FeatureKind;
    let bytes = std::fs::read(path).map_err(|source| RulesError::Io {
        path: path.to_owned(),
        source,
    })?;
    // Written by `train-themes` as UTF-8: a stray byte spoils its line, never the file
    // (read as another encoding, every non-English feature would be lost).
    let text = String::from_utf8_lossy(&bytes);
    let mut rep = FileReport::new(path.to_owned(), ListFormat::Domains, "learned".into());
    rep.format = "learned-weights".into();
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut not_here: std::collections::BTreeSet<String> = Default::default();
    let number = |v: &str| {
        v.trim()
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{v:?} is not a number"))
    };
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.contains('\u{fffd}') {
            rep.skip(i + 1, "not UTF-8".to_owned());
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let added = match fields.as_slice() {
            [what @ ("bias" | "threshold"), theme, value] => {
                match (b.theme_id(theme), number(value)) {
                    (None, _) => {
                        not_here.insert(format!("theme {theme}"));
                        continue;
                    }
                    (Some(_), Err(e)) => Err(e),
                    (Some(t), Ok(v)) => {
                        if *what == "bias" {
                            b.learned_bias(t, v);
                        } else {
                            b.learned_threshold(t, v);
                        }
                        Ok(())
                    }
                }
            }
            [kind, feature, theme, weight] => match FeatureKind::from_name(kind) {
                None => Err(format!(
                    "{kind:?}: a line is `bias`, `threshold`, `word`, `pair`, `start` or `class`"
                )),
                Some(kind) => match (b.theme_id(theme), number(weight)) {
                    (None, _) => {
                        not_here.insert(format!("theme {theme}"));
                        continue;
                    }
                    (Some(_), Err(e)) => Err(e),
                    (Some(_), Ok(_)) if kind == FeatureKind::Class && !b.has_class(feature) => {
                        not_here.insert(format!("class {{{feature}}}"));
                        continue;
                    }
                    (Some(t), Ok(w)) => b.learned(kind, feature, t, w),
                },
            },
            _ => Err(
                "expected `KIND<TAB>FEATURE<TAB>THEME<TAB>WEIGHT` or `bias<TAB>THEME<TAB>VALUE`"
                    .to_owned(),
            ),
        };
        match added {
            Ok(()) => rep.entries += 1,
            Err(e) => rep.skip(i + 1, e),
        }
    }
    if !not_here.is_empty() {
        let names: Vec<String> = not_here.into_iter().collect();
        rep.warnings.push(format!(
            "weights for what this policy does not have were left out: {}",
            names.join(", ")
        ));
    }
    report.files.push(rep);
    Ok(())
}

/// Loads a word list (one word a line, `#` comments): real words of a language, read as
/// themselves rather than as slips of a listed word.
fn load_word_file(path: &Path, b: &mut ThemeMatcherBuilder, report: &mut LoadReport) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|source| RulesError::Io {
        path: path.to_owned(),
        source,
    })?;
    let decoded = decode(&bytes);
    let mut rep = FileReport::new(path.to_owned(), ListFormat::Domains, "words".into());
    rep.format = "words".into();
    rep.warnings.extend(decoded.warning);
    for (i, line) in decoded.text.lines().enumerate() {
        let word = line.split('#').next().unwrap_or("").trim();
        if word.is_empty() {
            continue;
        }
        if word.contains(char::is_whitespace) {
            rep.skip(i + 1, format!("{word:?}: one word a line"));
            continue;
        }
        b.known_word(word);
        rep.entries += 1;
    }
    report.files.push(rep);
    Ok(())
}

fn load_weighted(
    path: &Path,
    dir: &Path,
    theme: crate::search::ThemeId,
    limit: i32,
    b: &mut ThemeMatcherBuilder,
    rep: &mut FileReport,
    depth: usize,
) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|source| RulesError::Io {
        path: path.to_owned(),
        source,
    })?;
    let decoded = decode(&bytes);
    if let Some(w) = decoded.warning {
        rep.warnings.push(format!("{}: {w}", path.display()));
    }
    for (i, line) in decoded.text.lines().enumerate() {
        let here = |rep: &mut FileReport, m: String| {
            rep.skipped += 1;
            if rep.problems.len() < crate::lists::KEPT_PROBLEMS {
                rep.problems
                    .push(format!("{}:{}: {m}", path.display(), i + 1));
            }
        };
        match weighted_line(line) {
            Ok(None) | Ok(Some(WeightedLine::Category(_))) => {}
            Ok(Some(WeightedLine::Include(inc))) => match resolve_include(inc, path, dir) {
                Some(p) if depth < 8 => load_weighted(&p, dir, theme, limit, b, rep, depth + 1)?,
                Some(_) => here(rep, format!("include {inc:?} nests more than 8 deep")),
                None => here(rep, format!("included file {inc:?} not found")),
            },
            Ok(Some(WeightedLine::Phrase { parts, weight })) => {
                match b.weighted(theme, &parts, weight.points(limit)) {
                    Ok(()) => rep.entries += 1,
                    Err(e) => here(rep, e),
                }
            }
            Err(e) => here(rep, e),
        }
    }
    Ok(())
}

/// e2guardian includes name absolute paths of the machine they came from
/// (`/etc/e2guardian/lists/phraselists/x/weighted`): try the path, then ever shorter tails of
/// it under the including file's folder and the lists folder.
fn resolve_include(inc: &str, from: &Path, dir: &Path) -> Option<PathBuf> {
    let direct = PathBuf::from(inc);
    if direct.is_file() {
        return Some(direct);
    }
    let parts: Vec<&str> = inc.split('/').filter(|p| !p.is_empty()).collect();
    let bases: Vec<&Path> = from.ancestors().skip(1).take(4).chain([dir]).collect();
    (0..parts.len()).find_map(|skip| {
        let tail: PathBuf = parts[skip..].iter().collect();
        bases.iter().map(|b| b.join(&tail)).find(|p| p.is_file())
    })
}

fn compile_roles(
    file: &ConfigFile,
    category_id: &impl Fn(&str) -> Option<CategoryId>,
    themes: &ThemeMatcher,
    category_count: usize,
    context: &RoleContext<'_>,
) -> Result<Vec<RolePolicy>> {
    let roles = &file.config.roles;
    if roles.is_empty() {
        return Err(RulesError::Invalid {
            path: file.path.clone(),
            line: 1,
            field: "roles".into(),
            message: "define at least one role".into(),
        });
    }
    if roles.len() > 255 {
        return Err(RulesError::Limit {
            what: "roles".into(),
            message: "at most 255".into(),
        });
    }
    let mut out = Vec::with_capacity(roles.len());
    for (name, def) in roles {
        let rdef = def.get_ref();
        let field = |f: &str| format!("roles.{name}.{f}");
        if !category::valid_name(name) {
            return Err(file.invalid(
                def.span().start,
                format!("roles.{name}"),
                "role names use lower-case letters, digits and '-'",
            ));
        }
        let mut cats = vec![rdef.default; category_count];
        for (cat, spec) in &rdef.categories {
            let at = spec.span().start;
            if cat == "illegal" {
                return Err(file.invalid(at, field(&format!("categories.{cat}")), "the illegal tier blocks for every role and cannot be allowed, warned or exempted"));
            }
            let id = category_id(cat).ok_or_else(|| {
                file.invalid(
                    at,
                    field(&format!("categories.{cat}")),
                    format!("{cat:?} is not a category"),
                )
            })?;
            cats[id.0 as usize] = *spec.get_ref();
        }
        let mut theme_actions = vec![ActionSpec::Plain(Action::Log); themes.theme_names().len()];
        for (theme, spec) in &rdef.themes {
            let at = spec.span().start;
            let id = themes.theme_id(theme).ok_or_else(|| {
                file.invalid(
                    at,
                    field(&format!("themes.{theme}")),
                    format!("{theme:?} is not a theme defined under [themes]"),
                )
            })?;
            let action = spec.get_ref().action();
            if !themes.can_lower(id) && matches!(action, Action::Block | Action::Warn) {
                return Err(file.invalid(
                    at,
                    field(&format!("themes.{theme}")),
                    format!("{theme:?} is a disclosure theme: a pupil asking for help must get through, so use \"log\" or \"allow\" with an alert"),
                ));
            }
            theme_actions[id.0 as usize] = *spec.get_ref();
        }
        let mut bands = Vec::new();
        let mut band_categories = CategorySet::EMPTY;
        for (i, band) in rdef.time_bands.iter().enumerate() {
            let at = band.span().start;
            let b = band.get_ref();
            let f = field(&format!("time_band[{i}]"));
            let mut set = CategorySet::EMPTY;
            for cat in &b.categories {
                if cat == "illegal" {
                    return Err(file.invalid(at, &f, "the illegal tier blocks for every role at every time; no time band can change it"));
                }
                set.insert(
                    category_id(cat).ok_or_else(|| {
                        file.invalid(at, &f, format!("{cat:?} is not a category"))
                    })?,
                );
            }
            if set.is_empty() {
                return Err(file.invalid(at, &f, "a time band needs at least one category"));
            }
            let days = parse_days(&b.days).map_err(|m| file.invalid(at, format!("{f}.days"), m))?;
            let from = parse_time(&b.from).map_err(|m| file.invalid(at, format!("{f}.from"), m))?;
            let to = parse_time(&b.to).map_err(|m| file.invalid(at, format!("{f}.to"), m))?;
            if from == to {
                return Err(file.invalid(at, &f, "`from` and `to` are the same time"));
            }
            band_categories = band_categories.union(set);
            bands.push(TimeBand {
                name: b
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{} {}-{}", b.days, b.from, b.to)),
                categories: set,
                spec: b.action,
                days,
                from,
                to,
            });
        }
        let mut files = vec![ActionSpec::Plain(Action::Allow); crate::files::FileKind::ALL.len()];
        for (kind, spec) in &rdef.files {
            let k = crate::files::FileKind::from_name(kind).ok_or_else(|| {
                let names: Vec<&str> = crate::files::FileKind::ALL
                    .iter()
                    .map(|k| k.name())
                    .collect();
                file.invalid(
                    spec.span().start,
                    field(&format!("files.{kind}")),
                    format!(
                        "{kind:?} is not a kind of file; the kinds are {}",
                        names.join(", ")
                    ),
                )
            })?;
            files[k.index()] = *spec.get_ref();
        }
        let max_download_bytes = match &rdef.max_download_mib {
            Some(mib) if *mib.get_ref() == 0 => {
                return Err(file.invalid(
                    mib.span().start,
                    field("max_download_mib"),
                    "a limit of 0 MiB refuses every download; leave it out for no limit",
                ))
            }
            Some(mib) => Some(mib.get_ref().saturating_mul(1 << 20)),
            None => None,
        };
        let ai_approved = match &rdef.ai_services {
            None => None,
            Some(list) => {
                let mut ids = Vec::new();
                for name in list.get_ref() {
                    let id = context.ai.id(name).ok_or_else(|| {
                        let names: Vec<&str> =
                            context.ai.all().iter().map(|s| s.name.as_str()).collect();
                        file.invalid(
                            list.span().start,
                            field("ai_services"),
                            format!(
                                "{name:?} is not an AI service; the services are {} (add one with [[ai_service]])",
                                names.join(", ")
                            ),
                        )
                    })?;
                    ids.push(id);
                }
                Some(ids)
            }
        };
        let school_accounts_only = match &rdef.school_accounts_only {
            Some(on) if *on.get_ref() => {
                let at = on.span().start;
                if context.accounts.is_empty() {
                    return Err(file.invalid(
                        at,
                        field("school_accounts_only"),
                        "name the school's accounts in [accounts] (microsoft and microsoft_tenant_id, or google)",
                    ));
                }
                if !rdef.decrypt_https {
                    return Err(file.invalid(
                        at,
                        field("school_accounts_only"),
                        "the sign-in headers are added to decrypted requests only: this role needs decrypt_https = true",
                    ));
                }
                for host in context.accounts.hosts() {
                    if let Some(h) = crate::host::Host::parse(host) {
                        if context.no_decrypt.matches(h.as_str(), &h.suffixes()) {
                            return Err(file.invalid(
                                at,
                                field("school_accounts_only"),
                                format!("{host} is in [proxy] no_decrypt, so the sign-in headers could not be added to it"),
                            ));
                        }
                    }
                }
                true
            }
            _ => false,
        };
        out.push(RolePolicy {
            ai_approved,
            school_accounts_only,
            page_text: rdef.page_text,
            files,
            max_download_bytes,
            name: name.clone(),
            description: rdef.description.clone().unwrap_or_default(),
            default: rdef.default,
            safesearch: rdef.safesearch,
            decrypt_https: rdef.decrypt_https,
            categories: cats,
            themes: theme_actions,
            bands,
            band_categories,
        });
    }
    Ok(out)
}

fn compile_local(
    file: &ConfigFile,
    role_id: &impl Fn(&str) -> Option<RoleId>,
    illegal: &ListIndex,
) -> Result<LocalIndex> {
    let mut entries = Vec::new();
    let mut add = |list: &[Spanned<String>],
                   kind: LocalKind,
                   role: Option<(&str, RoleId)>|
     -> Result<()> {
        let field = match (role, kind) {
            (None, LocalKind::Allow) => "local.allow".to_owned(),
            (None, LocalKind::Deny) => "local.deny".to_owned(),
            (Some((r, _)), LocalKind::Allow) => format!("roles.{r}.allow"),
            (Some((r, _)), LocalKind::Deny) => format!("roles.{r}.deny"),
        };
        for item in list {
            let at = item.span().start;
            let mut parsed = None;
            let outcome = parse_line(ListFormat::Urls, item.get_ref(), &mut |e| {
                if let Entry::Url { host, path } = e {
                    parsed = Some((host.into_owned(), path.to_owned()));
                }
            });
            let (host, path) = match (outcome, parsed) {
                (LineOutcome::Used(_), Some(p)) => p,
                (LineOutcome::Bad(m), _) => return Err(file.invalid(at, &field, m)),
                _ => {
                    return Err(file.invalid(
                        at,
                        &field,
                        format!("{:?} is not a host or host/path", item.get_ref()),
                    ))
                }
            };
            if kind == LocalKind::Allow && !illegal.is_empty() {
                if let Some(h) = Host::parse(&host) {
                    let p = if path.is_empty() { "/" } else { path.as_str() };
                    let text = format!("{host}{p}");
                    if !illegal
                        .lookup(h.as_str(), &h.suffixes(), Some(p), Some(&text))
                        .is_empty()
                    {
                        return Err(file.invalid(at, &field, format!("{:?} is on the illegal-content list: the illegal tier blocks it for every role and no configuration can allow it", item.get_ref())));
                    }
                }
            }
            entries.push(LocalEntry {
                kind,
                role: role.map(|(_, id)| id),
                host,
                path,
            });
        }
        Ok(())
    };
    let cfg = &file.config;
    add(&cfg.local.allow, LocalKind::Allow, None)?;
    add(&cfg.local.deny, LocalKind::Deny, None)?;
    for (name, def) in &cfg.roles {
        let Some(id) = role_id(name) else { continue };
        add(&def.get_ref().allow, LocalKind::Allow, Some((name, id)))?;
        add(&def.get_ref().deny, LocalKind::Deny, Some((name, id)))?;
    }
    Ok(LocalIndex::build(entries))
}

fn compile_networks(
    file: &ConfigFile,
    role_id: &impl Fn(&str) -> Option<RoleId>,
) -> Result<Vec<NetworkRule>> {
    file.config
        .networks
        .iter()
        .map(|n| {
            let at = n.span().start;
            let net = n.get_ref();
            let cidr = net
                .cidr
                .parse::<ipnet::IpNet>()
                .or_else(|_| net.cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    file.invalid(
                        at,
                        "network.cidr",
                        format!("{:?} is not a network (e.g. 10.10.0.0/16)", net.cidr),
                    )
                })?;
            let role = role_id(&net.role).ok_or_else(|| {
                file.invalid(at, "network.role", format!("{:?} is not a role", net.role))
            })?;
            Ok(NetworkRule {
                net: cidr.trunc(),
                role,
                site: net.site.clone(),
                login: net.login,
                signin: net.signin,
            })
        })
        .collect()
}
