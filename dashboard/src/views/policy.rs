//! The policy page: the roles-by-categories grid, search-term themes and their severity per
//! role, SafeSearch and decryption per role, time bands, local allow/deny entries and the
//! no-decrypt list. IT edits; everyone else reads. Every edit is checked, compiled and
//! swapped in by [`gatehouse_rules::control::PolicyControl::edit`], kept in the edits file, and written
//! to the audit trail cell by cell.

use super::{fields, FormBody, Page};
use crate::accounts::Role;
use crate::app::{Admin, Need};
use crate::html::{csrf_field, esc, layout, problem};
use crate::session::Session;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_rules::overrides::{Overrides, Setting};
use gatehouse_rules::search::ThemeId;
use gatehouse_rules::{Action, ActionSpec, CategoryId, Severity, Snapshot};
use std::sync::Arc;

const ACTIONS: [Action; 4] = [Action::Allow, Action::Log, Action::Warn, Action::Block];
const SEVERITIES: [Severity; 4] = [
    Severity::Low,
    Severity::Medium,
    Severity::High,
    Severity::Critical,
];

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Allow => "allow",
        Action::Log => "log",
        Action::Warn => "warn",
        Action::Block => "block",
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

fn parse_action(text: &str) -> Option<Action> {
    ACTIONS.into_iter().find(|a| action_name(*a) == text)
}

/// `""`/`"none"` is no alert.
fn parse_severity(text: &str) -> Result<Option<Severity>, ()> {
    match text {
        "" | "none" => Ok(None),
        t => SEVERITIES
            .into_iter()
            .find(|s| severity_name(*s) == t)
            .map(Some)
            .ok_or(()),
    }
}

fn spec_text(spec: ActionSpec) -> String {
    match spec.alert() {
        Some(sev) => format!(
            "{} + alert {}",
            action_name(spec.action()),
            severity_name(sev)
        ),
        None => action_name(spec.action()).to_owned(),
    }
}

fn select(name: &str, label: &str, current: &str, options: &[&str], disabled: bool) -> String {
    let opts: String = options
        .iter()
        .map(|o| {
            let sel = if *o == current { " selected" } else { "" };
            format!("<option value=\"{o}\"{sel}>{o}</option>")
        })
        .collect();
    format!(
        "<select name=\"{}\" aria-label=\"{}\"{}>{opts}</select>",
        esc(name),
        esc(label),
        if disabled { " disabled" } else { "" }
    )
}

fn categories(snap: &Snapshot) -> Vec<CategoryId> {
    let mut ids: Vec<CategoryId> = (0..snap.category_count())
        .map(|i| CategoryId(i as u8))
        .collect();
    ids.sort_by_key(|id| snap.category_name(*id).to_owned());
    ids
}

fn grid(snap: &Snapshot, s: &Session) -> String {
    let editable = s.role == Role::It;
    let roles = snap.roles();
    let mut out = format!(
        "<h2 id=\"grid\">Categories by role</h2><form method=\"post\" action=\"/policy/grid\">{}\
         <table class=\"grid\"><thead><tr><th>Category</th>",
        csrf_field(s)
    );
    for r in roles {
        out.push_str(&format!("<th>{}</th>", esc(&r.name)));
    }
    out.push_str("</tr></thead><tbody>");
    let options: Vec<&str> = ACTIONS.iter().map(|a| action_name(*a)).collect();
    for id in categories(snap) {
        let name = snap.category_name(id);
        out.push_str(&format!(
            "<tr><th scope=\"row\" title=\"{}\">{}</th>",
            esc(snap.category_description(id)),
            esc(name)
        ));
        for r in roles {
            let spec = r
                .categories
                .get(id.0 as usize)
                .copied()
                .unwrap_or(r.default);
            let alert = spec.alert().map_or(String::new(), |a| {
                format!(
                    " <span class=\"sev-{0}\">alert {0}</span>",
                    severity_name(a)
                )
            });
            out.push_str(&format!(
                "<td>{}{alert}</td>",
                select(
                    &format!("cell:{}:{}", r.name, name),
                    &format!("{} for {}", name, r.name),
                    action_name(spec.action()),
                    &options,
                    !editable
                )
            ));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    if editable {
        out.push_str("<p><button id=\"save-grid\">Save the grid</button> <span class=\"muted\">Changes apply to new requests as soon as they are saved.</span></p>");
    }
    out.push_str("</form>");
    if editable {
        let cats: Vec<&str> = categories(snap)
            .into_iter()
            .map(|c| snap.category_name(c))
            .collect();
        let role_names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        out.push_str(&format!(
            "<form method=\"post\" action=\"/policy/category-alert\" class=\"filters\">{}\
             <label>Role{}</label><label>Category{}</label><label>Alert the DSL{}</label><button>Set alert</button></form>",
            csrf_field(s),
            select("role", "role", "", &role_names, false),
            select("category", "category", "", &cats, false),
            select("alert", "alert", "none", &["none", "low", "medium", "high", "critical"], false)
        ));
    }
    out
}

fn themes(snap: &Snapshot, s: &Session) -> String {
    let editable = s.role == Role::It;
    let names = snap.themes().theme_names();
    let mut out = format!(
        "<h2 id=\"themes\">Search-term themes</h2><form method=\"post\" action=\"/policy/themes\">{}\
         <table class=\"grid\"><thead><tr><th>Theme</th>",
        csrf_field(s)
    );
    for r in snap.roles() {
        out.push_str(&format!("<th>{}</th>", esc(&r.name)));
    }
    out.push_str("</tr></thead><tbody>");
    let options: Vec<&str> = ACTIONS.iter().map(|a| action_name(*a)).collect();
    let sev: [&str; 5] = ["none", "low", "medium", "high", "critical"];
    for (i, theme) in names.iter().enumerate() {
        out.push_str(&format!("<tr><th scope=\"row\">{}</th>", esc(theme)));
        for r in snap.roles() {
            let spec = r.theme_action(ThemeId(i as u8));
            out.push_str(&format!(
                "<td>{} {}</td>",
                select(
                    &format!("theme:{}:{theme}", r.name),
                    &format!("{theme} for {}", r.name),
                    action_name(spec.action()),
                    &options,
                    !editable
                ),
                select(
                    &format!("alert:{}:{theme}", r.name),
                    &format!("alert for {theme} for {}", r.name),
                    spec.alert().map_or("none", severity_name),
                    &sev,
                    !editable
                )
            ));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    if editable {
        out.push_str("<p><button>Save the themes</button></p>");
    }
    out.push_str("</form>");
    out
}

fn roles(snap: &Snapshot, s: &Session) -> String {
    let editable = s.role == Role::It;
    let mut out = String::from(
        "<h2 id=\"roles\">SafeSearch and decryption</h2><table><thead><tr><th>Role</th><th>Default</th>\
         <th>SafeSearch</th><th>Decrypt HTTPS</th><th></th></tr></thead><tbody>",
    );
    for r in snap.roles() {
        let onoff = |on: bool| if on { "on" } else { "off" };
        out.push_str(&format!(
            "<tr><form method=\"post\" action=\"/policy/role\">{csrf}<input type=\"hidden\" name=\"role\" value=\"{name}\">\
             <th scope=\"row\">{name}</th><td>{default}</td><td>{ss}</td><td>{dec}</td><td>{button}</td></form></tr>",
            csrf = csrf_field(s),
            name = esc(&r.name),
            default = esc(&spec_text(r.default)),
            ss = select("safesearch", "SafeSearch", onoff(r.safesearch), &["on", "off"], !editable),
            dec = select("decrypt_https", "Decrypt HTTPS", onoff(r.decrypt_https), &["on", "off"], !editable),
            button = if editable { "<button>Save</button>" } else { "" },
        ));
    }
    out.push_str("</tbody></table>");
    out
}

/// Per role: how pages are read, what each kind of download does, the largest download, and
/// the AI services it may use.
fn content(snap: &Snapshot, s: &Session) -> String {
    use gatehouse_rules::config::PageText;
    use gatehouse_rules::files::FileKind;
    let editable = s.role == Role::It;
    let mut out = String::from(
        "<h2 id=\"content\">Pages, downloads and AI</h2>\
         <p>Page text: <em>alert</em> streams the page and tells the safeguarding lead, <em>hold</em> reads the first part before delivering it \
         (a theme the role blocks shows the block page), <em>off</em> reads nothing. Downloads are judged by their first bytes. \
         AI: <em>categories decide</em>, or <em>only these</em> (every other AI service blocked; the ones ticked allowed and read).</p>\
         <table><thead><tr><th>Role</th><th>Page text</th><th>Largest download (MiB, 0: no limit)</th><th>Downloads</th><th>AI services</th><th></th></tr></thead><tbody>",
    );
    let actions = ["allow", "log", "warn", "block"];
    for r in snap.roles() {
        let mode = match r.page_text {
            PageText::Alert => "alert",
            PageText::Hold => "hold",
            PageText::Off => "off",
        };
        let mib = r.max_download_bytes.map_or(0, |b| b >> 20);
        let files: String = FileKind::ALL
            .iter()
            .map(|k| {
                format!(
                    "<label>{} {}</label> ",
                    esc(k.name()),
                    select(
                        &format!("file.{}", k.name()),
                        &format!("Downloads of kind {}", k.name()),
                        action_name(r.file_action(*k).action()),
                        &actions,
                        !editable
                    )
                )
            })
            .collect();
        let ai_only = if r.ai_approved.is_some() {
            "only these"
        } else {
            "categories decide"
        };
        let mut ai = select(
            "ai_only",
            "AI services",
            ai_only,
            &["categories decide", "only these"],
            !editable,
        );
        for service in snap.ai_services().all() {
            let on = snap
                .ai_services()
                .id(&service.name)
                .is_some_and(|id| r.ai_approved.as_ref().is_some_and(|a| a.contains(&id)));
            ai.push_str(&format!(
                " <label><input type=\"checkbox\" name=\"ai.{name}\" value=\"on\"{checked}{disabled}> {label}{ws}</label>",
                name = esc(&service.name),
                checked = if on { " checked" } else { "" },
                disabled = if editable { "" } else { " disabled" },
                label = esc(&service.label),
                ws = if service.websocket { " (chat not read)" } else { "" },
            ));
        }
        out.push_str(&format!(
            "<tr><form method=\"post\" action=\"/policy/content\">{csrf}<input type=\"hidden\" name=\"role\" value=\"{name}\">\
             <th scope=\"row\">{name}</th><td>{mode}</td>\
             <td><input type=\"number\" name=\"max_download_mib\" min=\"0\" max=\"1048576\" value=\"{mib}\" aria-label=\"Largest download in MiB\"{ro}></td>\
             <td>{files}</td><td>{ai}</td><td>{button}</td></form></tr>",
            csrf = csrf_field(s),
            name = esc(&r.name),
            mode = select("page_text", "Page text", mode, &["alert", "hold", "off"], !editable),
            ro = if editable { "" } else { " disabled" },
            button = if editable { "<button>Save</button>" } else { "" },
        ));
    }
    out.push_str("</tbody></table>");
    out
}

fn bands(snap: &Snapshot, s: &Session) -> String {
    let editable = s.role == Role::It;
    let mut out = String::from(
        "<h2 id=\"bands\">Time bands</h2><table><thead><tr><th>Role</th><th>Name</th><th>Categories</th><th>Action</th><th>Days and times</th><th></th></tr></thead><tbody>",
    );
    for r in snap.roles() {
        for (i, b) in r.bands.iter().enumerate() {
            let cats = snap.category_names(b.categories).join(", ");
            let remove = if editable {
                format!(
                    "<form method=\"post\" action=\"/policy/time-band\" class=\"inline\">{}\
                     <input type=\"hidden\" name=\"op\" value=\"remove\"><input type=\"hidden\" name=\"role\" value=\"{}\">\
                     <input type=\"hidden\" name=\"index\" value=\"{i}\"><button class=\"danger\">Remove</button></form>",
                    csrf_field(s),
                    esc(&r.name)
                )
            } else {
                String::new()
            };
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{remove}</td></tr>",
                esc(&r.name),
                esc(&b.name),
                esc(&cats),
                esc(&spec_text(b.spec)),
                esc(&band_times(b)),
            ));
        }
    }
    out.push_str("</tbody></table>");
    if editable {
        let role_names: Vec<&str> = snap.roles().iter().map(|r| r.name.as_str()).collect();
        out.push_str(&format!(
            "<form method=\"post\" action=\"/policy/time-band\" class=\"filters\">{}<input type=\"hidden\" name=\"op\" value=\"add\">\
             <label>Role{}</label><label>Name<input type=\"text\" name=\"name\" placeholder=\"lunch\"></label>\
             <label>Categories (comma-separated)<input type=\"text\" name=\"categories\" placeholder=\"social-media, games\"></label>\
             <label>Action{}</label><label>Days<input type=\"text\" name=\"days\" value=\"mon-fri\"></label>\
             <label>From<input type=\"text\" name=\"from\" placeholder=\"12:00\"></label><label>To<input type=\"text\" name=\"to\" placeholder=\"13:30\"></label>\
             <button>Add time band</button></form>",
            csrf_field(s),
            select("role", "role", "", &role_names, false),
            select("action", "action", "allow", &["allow", "log", "warn", "block"], false),
        ));
    }
    out
}

fn band_times(b: &gatehouse_rules::policy::TimeBand) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let days: Vec<&str> = (0..7)
        .filter(|d| b.days & (1 << d) != 0)
        .map(|d| DAYS[d as usize])
        .collect();
    format!(
        "{} {:02}:{:02}-{:02}:{:02}",
        days.join(" "),
        b.from / 60,
        b.from % 60,
        b.to / 60,
        b.to % 60
    )
}

fn entry_list(
    title: &str,
    id: &str,
    list: &str,
    entries: &[String],
    s: &Session,
    action: &str,
) -> String {
    let editable = s.role == Role::It;
    let mut out = format!("<h2 id=\"{id}\">{}</h2><ul class=\"entries\">", esc(title));
    for e in entries {
        let remove = if editable {
            format!(
                " <form method=\"post\" action=\"{action}\" class=\"inline\">{}<input type=\"hidden\" name=\"list\" value=\"{list}\">\
                 <input type=\"hidden\" name=\"op\" value=\"remove\"><input type=\"hidden\" name=\"entry\" value=\"{}\">\
                 <button class=\"danger\">Remove</button></form>",
                csrf_field(s),
                esc(e)
            )
        } else {
            String::new()
        };
        out.push_str(&format!("<li><code>{}</code>{remove}</li>", esc(e)));
    }
    if entries.is_empty() {
        out.push_str("<li class=\"muted\">none</li>");
    }
    out.push_str("</ul>");
    if editable {
        out.push_str(&format!(
            "<form method=\"post\" action=\"{action}\" class=\"filters\">{}<input type=\"hidden\" name=\"list\" value=\"{list}\">\
             <input type=\"hidden\" name=\"op\" value=\"add\"><label>Host or URL prefix<input type=\"text\" name=\"entry\" aria-label=\"{} entry\"></label>\
             <button>Add</button></form>",
            csrf_field(s),
            esc(title)
        ));
    }
    out
}

/// `[local]` allow and deny entries in force: the policy file's, less those removed on the
/// page, plus those added there.
async fn local_entries(admin: &Arc<Admin>) -> Result<(Vec<String>, Vec<String>), Response> {
    let control = Arc::clone(&admin.parts.policy);
    crate::app::blocking(move || {
        let edits = control.edits()?;
        let file = control.policy_file()?;
        let effective = |base: &[toml::Spanned<String>], added: &[String]| -> Vec<String> {
            base.iter()
                .map(|e| e.get_ref().clone())
                .filter(|e| !edits.local.removed.contains(e))
                .chain(added.iter().cloned())
                .collect()
        };
        Ok((
            effective(&file.config.local.allow, &edits.local.allow),
            effective(&file.config.local.deny, &edits.local.deny),
        ))
    })
    .await
}

pub async fn page(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Page {
    let s = admin.who(&headers, Need::Anyone, "/policy")?;
    let snap = admin.parts.policy.live().load();
    let (allow, deny) = local_entries(&admin).await?;
    let mut body = format!(
        "<p>Generation <strong id=\"generation\">{}</strong> of the policy is in force. \
         Edits made here are kept in <code>{}</code> and laid over <code>{}</code> on every load.</p>\
         <p class=\"noprint\"><a href=\"#grid\">Categories</a> · <a href=\"#themes\">Themes</a> · <a href=\"#roles\">SafeSearch and decryption</a> · <a href=\"#content\">Pages, downloads and AI</a> · \
         <a href=\"#bands\">Time bands</a> · <a href=\"#allow\">Allowed</a> · <a href=\"#deny\">Denied</a> · <a href=\"#no-decrypt\">Not decrypted</a> · \
         <a href=\"/explain\">Explain a decision</a></p>",
        admin.parts.policy.live().generation(),
        esc(&admin.parts.policy.edits_path().display().to_string()),
        esc(&admin.parts.policy.config_path().display().to_string()),
    );
    if s.role != Role::It {
        body.push_str(
            "<p class=\"notice\">You can read the policy; only IT accounts can change it.</p>",
        );
    }
    body.push_str(&grid(&snap, &s));
    body.push_str(&themes(&snap, &s));
    body.push_str(&roles(&snap, &s));
    body.push_str(&content(&snap, &s));
    body.push_str(&bands(&snap, &s));
    body.push_str(&entry_list(
        "Allowed for everyone",
        "allow",
        "allow",
        &allow,
        &s,
        "/policy/local",
    ));
    body.push_str(&entry_list(
        "Blocked for everyone",
        "deny",
        "deny",
        &deny,
        &s,
        "/policy/local",
    ));
    let no_decrypt = admin.parts.policy.no_decrypt();
    body.push_str(&entry_list(
        "Never decrypted (tunnelled as they are)",
        "no-decrypt",
        "no-decrypt",
        &no_decrypt,
        &s,
        "/policy/no-decrypt",
    ));
    Ok(layout(&s, "/policy", "Policy", &body))
}

/// One audited change: `(target, before, after)`.
type Change = (String, String, String);

fn bad(message: &str) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        &format!("{message} Nothing was changed."),
        "/policy",
    )
}

/// Applies an edit, audits each change, and goes back to the policy page.
async fn commit(
    admin: &Arc<Admin>,
    s: &Session,
    changes: Vec<Change>,
    anchor: &str,
    change: impl FnOnce(&mut Overrides) -> Result<(), String> + Send + 'static,
) -> Page {
    if changes.is_empty() {
        return Ok(Redirect::to(&format!("/policy#{anchor}")).into_response());
    }
    let control = Arc::clone(&admin.parts.policy);
    let result =
        tokio::task::spawn_blocking(move || control.edit(change, chrono::Utc::now())).await;
    let generation = match result {
        Ok(Ok((_, _, generation))) => generation,
        Ok(Err(e)) => {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                &format!("That change does not load, so the policy in force stays as it was: {e}"),
                "/policy",
            ))
        }
        Err(e) => {
            return Err(problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                &e.to_string(),
                "/policy",
            ))
        }
    };
    let actor = s.name.clone();
    admin
        .with_db(move |db| {
            for (target, before, after) in &changes {
                crate::audit::record(
                    db,
                    &actor,
                    &format!("policy (generation {generation})"),
                    target,
                    before,
                    after,
                )?;
            }
            Ok(())
        })
        .await?;
    Ok(Redirect::to(&format!("/policy#{anchor}")).into_response())
}

fn role_of<'a>(
    snap: &'a Snapshot,
    name: &str,
) -> Result<&'a gatehouse_rules::policy::RolePolicy, Response> {
    snap.role_id(name)
        .and_then(|id| snap.role(id))
        .ok_or_else(|| bad(&format!("{name:?} is not a role of this policy.")))
}

pub async fn save_grid(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    form: FormBody,
) -> Page {
    let f = fields(form);
    let s = admin.who_posting(&headers, &f, Need::It, "/policy")?;
    let snap = admin.parts.policy.live().load();
    let mut changes = Vec::new();
    let mut settings = Vec::new();
    for (key, value) in &f.0 {
        let Some(rest) = key.strip_prefix("cell:") else {
            continue;
        };
        let Some((role, category)) = rest.split_once(':') else {
            return Err(bad(&format!("The grid cell {key:?} is not role:category.")));
        };
        let r = role_of(&snap, role)?;
        let Some(cat) = snap.category_id(category) else {
            return Err(bad(&format!(
                "{category:?} is not a category of this policy."
            )));
        };
        let Some(action) = parse_action(value) else {
            return Err(bad(&format!("{value:?} is not an action for {category} ({role}): choose allow, log, warn or block.")));
        };
        let current = r
            .categories
            .get(cat.0 as usize)
            .copied()
            .unwrap_or(r.default);
        if current.action() != action {
            let new = Setting {
                action,
                alert: current.alert(),
            };
            changes.push((
                format!("roles.{role}.categories.{category}"),
                spec_text(current),
                spec_text(ActionSpec::Full {
                    action,
                    alert: current.alert(),
                }),
            ));
            settings.push((role.to_owned(), category.to_owned(), new));
        }
    }
    commit(&admin, &s, changes, "grid", move |o| {
        for (role, category, setting) in settings {
            o.role(&role).categories.insert(category, setting);
        }
        Ok(())
    })
    .await
}

pub async fn category_alert(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    form: FormBody,
) -> Page {
    let f = fields(form);
    let s = admin.who_posting(&headers, &f, Need::It, "/policy")?;
    let snap = admin.parts.policy.live().load();
    let role = f.need("role", "/policy")?.to_owned();
    let category = f.need("category", "/policy")?.to_owned();
    let r = role_of(&snap, &role)?;
    let Some(cat) = snap.category_id(&category) else {
        return Err(bad(&format!(
            "{category:?} is not a category of this policy."
        )));
    };
    let Ok(alert) = parse_severity(f.get("alert").unwrap_or("")) else {
        return Err(bad(
            "The alert must be none, low, medium, high or critical.",
        ));
    };
    let current = r
        .categories
        .get(cat.0 as usize)
        .copied()
        .unwrap_or(r.default);
    let new = Setting {
        action: current.action(),
        alert,
    };
    let after = ActionSpec::Full {
        action: new.action,
        alert,
    };
    let changes = if current.alert() == alert {
        vec![]
    } else {
        vec![(
            format!("roles.{role}.categories.{category}"),
            spec_text(current),
            spec_text(after),
        )]
    };
    commit(&admin, &s, changes, "grid", move |o| {
        o.role(&role).categories.insert(category, new);
        Ok(())
    })
    .await
}

pub async fn save_themes(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    form: FormBody,
) -> Page {
    let f = fields(form);
    let s = admin.who_posting(&headers, &f, Need::It, "/policy")?;
    let snap = admin.parts.policy.live().load();
    let mut changes = Vec::new();
    let mut settings = Vec::new();
    for (key, value) in &f.0 {
        let Some(rest) = key.strip_prefix("theme:") else {
            continue;
        };
        let Some((role, theme)) = rest.split_once(':') else {
            return Err(bad(&format!("The theme cell {key:?} is not role:theme.")));
        };
        let r = role_of(&snap, role)?;
        let Some(id) = snap.themes().theme_id(theme) else {
            return Err(bad(&format!("{theme:?} is not a theme of this policy.")));
        };
        let Some(action) = parse_action(value) else {
            return Err(bad(&format!(
                "{value:?} is not an action for {theme} ({role})."
            )));
        };
        let Ok(alert) = parse_severity(f.get(&format!("alert:{role}:{theme}")).unwrap_or("none"))
        else {
            return Err(bad(&format!(
                "The alert for {theme} ({role}) must be none, low, medium, high or critical."
            )));
        };
        let current = r.theme_action(id);
        if current.action() != action || current.alert() != alert {
            changes.push((
                format!("roles.{role}.themes.{theme}"),
                spec_text(current),
                spec_text(ActionSpec::Full { action, alert }),
            ));
            settings.push((role.to_owned(), theme.to_owned(), Setting { action, alert }));
        }
    }
    commit(&admin, &s, changes, "themes", move |o| {
        for (role, theme, setting) in settings {
            o.role(&role).themes.insert(theme, setting);
        }
        Ok(())
    })
    .await
}

pub async fn role(State(admin): State<Arc<Admin>>, headers: HeaderMap, form: FormBody) -> Page {
    let f = fields(form);
    let s = admin.who_posting(&headers, &f, Need::It, "/policy")?;
    let snap = admin.parts.policy.live().load();
    let role = f.need("role", "/policy")?.to_owned();
    let r = role_of(&snap, &role)?;
    let onoff = |name: &str| match f.get(name) {
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        _ => Err(bad(&format!("\u{201c}{name}\u{201d} must be on or off."))),
    };
    let (safesearch, decrypt) = (onoff("safesearch")?, onoff("decrypt_https")?);
    let word = |on: bool| if on { "on" } else { "off" }.to_owned();
    let mut changes = Vec::new();
    if r.safesearch != safesearch {
        changes.push((
            format!("roles.{role}.safesearch"),
            word(r.safesearch),
            word(safesearch),
        ));
    }
    if r.decrypt_https != decrypt {
        changes.push((
            format!("roles.{role}.decrypt_https"),
            word(r.decrypt_https),
            word(decrypt),
        ));
    }
    commit(&admin, &s, changes, "roles", move |o| {
        let edits = o.role(&role);
        edits.safesearch = Some(safesearch);
        edits.decrypt_https = Some(decrypt);
        Ok(())
    })
    .await
}

/// One role's page reading, downloads and AI services, from the policy page's form.
pub async fn content_settings(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    form: FormBody,
) -> Page {
    use gatehouse_rules::config::PageText;
    use gatehouse_rules::files::FileKind;
    let f = fields(form);
    let s = admin.who_posting(&headers, &f, Need::It, "/policy")?;
    let snap = admin.parts.policy.live().load();
    let role = f.need("role", "/policy")?.to_owned();
    let r = role_of(&snap, &role)?;
    let mut changes = Vec::new();
    let page_text = match f.get("page_text") {
        Some("alert") => PageText::Alert,
        Some("hold") => PageText::Hold,
        Some("off") => PageText::Off,
        _ => return Err(bad("\u{201c}Page text\u{201d} must be alert, hold or off.")),
    };
    let name_of = |m: PageText| match m {
        PageText::Alert => "alert",
        PageText::Hold => "hold",
        PageText::Off => "off",
    };
    if page_text != r.page_text {
        changes.push((
            format!("roles.{role}.page_text"),
            name_of(r.page_text).to_owned(),
            name_of(page_text).to_owned(),
        ));
    }
    let mib: u64 = f
        .get("max_download_mib")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map_or(Ok(0), str::parse)
        .ok()
        .filter(|m| *m <= 1 << 20)
        .ok_or_else(|| {
            bad("The largest download must be a whole number of MiB from 0 (no limit) to 1048576.")
        })?;
    let before = r.max_download_bytes.map_or(0, |b| b >> 20);
    if mib != before {
        let text = |m: u64| {
            if m == 0 {
                "no limit".to_owned()
            } else {
                format!("{m} MiB")
            }
        };
        changes.push((
            format!("roles.{role}.max_download_mib"),
            text(before),
            text(mib),
        ));
    }
    let mut files = Vec::new();
    for kind in FileKind::ALL {
        let field = format!("file.{}", kind.name());
        let action = parse_action(f.get(&field).unwrap_or_default()).ok_or_else(|| {
            bad(&format!(
                "Downloads of kind {} must be allow, log, warn or block.",
                kind.name()
            ))
        })?;
        let current = r.file_action(kind);
        if action != current.action() {
            changes.push((
                format!("roles.{role}.files.{}", kind.name()),
                spec_text(current),
                action_name(action).to_owned(),
            ));
            files.push((
                kind.name().to_owned(),
                Setting {
                    action,
                    alert: current.alert(),
                },
            ));
        }
    }
    let ai_only = match f.get("ai_only") {
        Some("categories decide") => false,
        Some("only these") => true,
        _ => return Err(bad("\u{201c}AI services\u{201d} must be \u{201c}categories decide\u{201d} or \u{201c}only these\u{201d}.")),
    };
    let services: Vec<String> = snap
        .ai_services()
        .all()
        .iter()
        .filter(|svc| f.get(&format!("ai.{}", svc.name)) == Some("on"))
        .map(|svc| svc.name.clone())
        .collect();
    let current: Option<Vec<String>> = r.ai_approved.as_ref().map(|ids| {
        ids.iter()
            .filter_map(|id| snap.ai_services().get(*id).map(|s| s.name.clone()))
            .collect()
    });
    let wanted = ai_only.then(|| services.clone());
    if wanted != current {
        let text = |v: &Option<Vec<String>>| match v {
            None => "categories decide".to_owned(),
            Some(list) if list.is_empty() => "none (every AI service blocked)".to_owned(),
            Some(list) => list.join(", "),
        };
        changes.push((
            format!("roles.{role}.ai_services"),
            text(&current),
            text(&wanted),
        ));
    }
    let ai_changed = wanted != current;
    commit(&admin, &s, changes, "content", move |o| {
        let edits = o.role(&role);
        edits.page_text = Some(page_text);
        edits.max_download_mib = Some(mib);
        for (kind, setting) in files {
            edits.files.insert(kind, setting);
        }
        if ai_changed {
            edits.ai_only = Some(ai_only);
            edits.ai_services = services;
        }
        Ok(())
    })
    .await
}

/// A host or URL prefix as IT types it: no scheme, no spaces.
fn clean_entry(text: &str) -> Result<String, Response> {
    let e = text
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_ascii_lowercase();
    if e.is_empty() || e.len() > 512 || e.contains(char::is_whitespace) || !e.contains('.') {
        return Err(bad(&format!(
            "{text:?} is not a host or URL prefix (like example.org or example.org/path)."
        )));
    }
    Ok(e)
}

pub async fn local(State(admin): State<Arc<Admin>>, headers: HeaderMap, form: FormBody) -> Page {
    let f = fields(form);
    let s = admin.who_posting(&headers, &f, Need::It, "/policy")?;
    let list = f.need("list", "/policy")?.to_owned();
    if list != "allow" && list != "deny" {
        return Err(bad("The list must be allow or deny."));
    }
    let op = f.need("op", "/policy")?.to_owned();
    let entry = clean_entry(f.need("entry", "/policy")?)?;
    let (allow, deny) = local_entries(&admin).await?;
    let current = if list == "allow" { allow } else { deny };
    match op.as_str() {
        "add" if current.contains(&entry) => {
            return Err(bad(&format!("{entry} is already on the list.")))
        }
        "remove" if !current.contains(&entry) => {
            return Err(bad(&format!("{entry} is not on the list.")))
        }
        _ => {}
    }
    let target = format!("local.{list}");
    let changes = match op.as_str() {
        "add" => vec![(target, String::new(), entry.clone())],
        "remove" => vec![(target, entry.clone(), String::new())],
        _ => return Err(bad("The operation must be add or remove.")),
    };
    let anchor = list.clone();
    commit(&admin, &s, changes, &anchor, move |o| {
        let added = if list == "allow" {
            &mut o.local.allow
        } else {
            &mut o.local.deny
        };
        if op == "add" {
            added.push(entry.clone());
            o.local.removed.retain(|e| *e != entry);
        } else if let Some(i) = added.iter().position(|e| *e == entry) {
            added.remove(i);
        } else if !o.local.removed.contains(&entry) {
            o.local.removed.push(entry);
        }
        Ok(())
    })
    .await
}

pub async fn no_decrypt(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    form: FormBody,
) -> Page {
    let f = fields(form);
    let s = admin.who_posting(&headers, &f, Need::It, "/policy")?;
    let op = f.need("op", "/policy")?.to_owned();
    let entry = clean_entry(f.need("entry", "/policy")?)?;
    if entry.contains('/') {
        return Err(bad(
            "A no-decrypt entry is a host name (the path is not visible before decrypting).",
        ));
    }
    let current = admin.parts.policy.no_decrypt();
    let mut next: Vec<String> = current.clone();
    match op.as_str() {
        "add" if !next.contains(&entry) => next.push(entry.clone()),
        "add" => return Err(bad(&format!("{entry} is already on the list."))),
        "remove" if next.contains(&entry) => next.retain(|e| *e != entry),
        "remove" => return Err(bad(&format!("{entry} is not on the list."))),
        _ => return Err(bad("The operation must be add or remove.")),
    }
    let changes = vec![("no_decrypt".to_owned(), current.join(" "), next.join(" "))];
    commit(&admin, &s, changes, "no-decrypt", move |o| {
        o.no_decrypt = Some(next);
        Ok(())
    })
    .await
}

pub async fn time_band(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    form: FormBody,
) -> Page {
    use gatehouse_rules::config::TimeBandDef;
    let f = fields(form);
    let s = admin.who_posting(&headers, &f, Need::It, "/policy")?;
    let snap = admin.parts.policy.live().load();
    let role = f.need("role", "/policy")?.to_owned();
    let r = role_of(&snap, &role)?;
    // The role's bands as they are now, written back as definitions.
    let mut defs: Vec<TimeBandDef> = r
        .bands
        .iter()
        .map(|b| {
            let t = band_times(b);
            let (days, times) = t.rsplit_once(' ').unwrap_or(("", ""));
            let (from, to) = times.split_once('-').unwrap_or(("00:00", "24:00"));
            TimeBandDef {
                name: Some(b.name.clone()),
                categories: snap
                    .category_names(b.categories)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                action: b.spec,
                days: days
                    .split(' ')
                    .map(|d| d.to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join(","),
                from: from.to_owned(),
                to: to.to_owned(),
            }
        })
        .collect();
    let before = defs
        .iter()
        .map(|d| {
            format!(
                "{} {} {}-{}",
                d.name.as_deref().unwrap_or(""),
                d.categories.join(","),
                d.from,
                d.to
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    match f.need("op", "/policy")? {
        "remove" => {
            let i: usize = f
                .need("index", "/policy")?
                .parse()
                .map_err(|_| bad("The band index is not a number."))?;
            if i >= defs.len() {
                return Err(bad("There is no such time band."));
            }
            defs.remove(i);
        }
        "add" => {
            let categories: Vec<String> = f
                .need("categories", "/policy")?
                .split(',')
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect();
            for c in &categories {
                if snap.category_id(c).is_none() {
                    return Err(bad(&format!("{c:?} is not a category of this policy.")));
                }
            }
            let Some(action) = parse_action(f.need("action", "/policy")?) else {
                return Err(bad("The action must be allow, log, warn or block."));
            };
            let days = f.need("days", "/policy")?.to_owned();
            gatehouse_rules::policy::parse_days(&days).map_err(|m| bad(&format!("Days: {m}.")))?;
            let from = f.need("from", "/policy")?.to_owned();
            let to = f.need("to", "/policy")?.to_owned();
            gatehouse_rules::policy::parse_time(&from).map_err(|m| bad(&format!("From: {m}.")))?;
            gatehouse_rules::policy::parse_time(&to).map_err(|m| bad(&format!("To: {m}.")))?;
            defs.push(TimeBandDef {
                name: f
                    .get("name")
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty()),
                categories,
                action: ActionSpec::Plain(action),
                days,
                from,
                to,
            });
        }
        _ => return Err(bad("The operation must be add or remove.")),
    }
    let after = defs
        .iter()
        .map(|d| {
            format!(
                "{} {} {}-{}",
                d.name.as_deref().unwrap_or(""),
                d.categories.join(","),
                d.from,
                d.to
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let changes = vec![(format!("roles.{role}.time_bands"), before, after)];
    commit(&admin, &s, changes, "bands", move |o| {
        o.role(&role).time_bands = Some(defs);
        Ok(())
    })
    .await
}
