//! Router-level tests of every admin page handler: who may see and do what, CSRF refusals,
//! bad form input answered with a clear message and nothing changed, and each change applied
//! live, kept across a restart, and written to the audit trail.
//!
//! The router is driven in-process (`tower::ServiceExt::oneshot`) over real files: a policy
//! with lists, `admin.db`, a SQLite event store and the alert outbox in a temporary folder.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test: a failure is a failed test"
)]

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use gatehouse_dashboard::accounts::{self, Role};
use gatehouse_dashboard::vouchers::Vouchers;
use gatehouse_dashboard::{Admin, AdminParts, Db};
use gatehouse_rules::config::ConfigFile;
use gatehouse_rules::control::PolicyControl;
use gatehouse_rules::{evaluate, Action, Facts, Target, Verdict};
use gatehouse_safeguarding::config::StoreSettings;
use gatehouse_safeguarding::outbox::Outbox;
use gatehouse_safeguarding::store::Store;
use gatehouse_safeguarding::Event;
use http_body_util::BodyExt as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tower::ServiceExt as _;

const PASSWORD: &str = "a long enough password";

/// A form's fields.
type Fields<'a> = &'a [(&'a str, &'a str)];

struct World {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    router: Router,
    control: Arc<PolicyControl>,
    db: Arc<Mutex<Db>>,
    vouchers: Arc<Vouchers>,
}

fn policy_text(root: &Path) -> String {
    let themes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lists/themes/self-harm/en.txt");
    format!(
        r#"
lists_dir = "lists"
[school]
name = "Test Academy"
timezone = "Europe/London"
[proxy]
no_decrypt = ["bank.example"]
[[network]]
cidr = "127.0.0.0/8"
role = "pupil"
[[source]]
format = "domains"
path = "games.txt"
category = "games"
[[source]]
format = "domains"
path = "social.txt"
category = "social-media"
[local]
allow = ["bbc.co.uk"]
[themes.self-harm]
file = "{}"
[roles.pupil]
default = "allow"
[roles.pupil.categories]
social-media = "block"
[roles.pupil.themes]
self-harm = {{ action = "block", alert = "high" }}
[roles.staff]
default = "allow"
[roles.guest]
default = "allow"
"#,
        themes.display()
    )
    .replace("{root}", &root.display().to_string())
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let data = root.join("data");
    std::fs::create_dir_all(root.join("lists")).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(root.join("lists/games.txt"), "games.example\n").unwrap();
    std::fs::write(root.join("lists/social.txt"), "social.example\n").unwrap();
    std::fs::write(root.join("policy.toml"), policy_text(&root)).unwrap();
    let (control, db, vouchers) = open(&root);
    {
        let db = db.lock().unwrap();
        accounts::add(&db, "ivy", Role::It, PASSWORD).unwrap();
        accounts::add(&db, "dee", Role::Dsl, PASSWORD).unwrap();
        accounts::add(&db, "vic", Role::Viewer, PASSWORD).unwrap();
    }
    seed_store(&data);
    seed_outbox(&data);
    let router = router(&control, &db, &vouchers, &data);
    World {
        _dir: dir,
        root,
        data,
        router,
        control,
        db,
        vouchers,
    }
}

fn open(root: &Path) -> (Arc<PolicyControl>, Arc<Mutex<Db>>, Arc<Vouchers>) {
    let file = ConfigFile::load(&root.join("policy.toml")).unwrap();
    let control = Arc::new(
        PolicyControl::start(
            &file,
            false,
            root.join("data/policy-edits.toml"),
            Box::new(|_| {}),
            chrono::Utc::now(),
        )
        .unwrap(),
    );
    let db = Db::open(&root.join("data/admin.db")).unwrap();
    let vouchers = Arc::new(Vouchers::load(&db).unwrap());
    (control, Arc::new(Mutex::new(db)), vouchers)
}

/// A school with no people table and no named devices (the proxy supplies the real one;
/// tests/admin.rs reads it through the running proxy).
struct NoPeople;

impl gatehouse_dashboard::app::PeopleView for NoPeople {
    fn find(&self, _: &str, _: usize) -> Vec<gatehouse_dashboard::app::PersonRow> {
        Vec::new()
    }
    fn devices(&self) -> Vec<gatehouse_dashboard::app::DeviceRow> {
        Vec::new()
    }
}

fn router(
    control: &Arc<PolicyControl>,
    db: &Arc<Mutex<Db>>,
    vouchers: &Arc<Vouchers>,
    data: &Path,
) -> Router {
    gatehouse_dashboard::router(Admin::new(AdminParts {
        db: Arc::clone(db),
        policy: Arc::clone(control),
        vouchers: Arc::clone(vouchers),
        store: Some((StoreSettings::default(), data.to_owned())),
        outbox: data.join("outbox.db"),
        ca_pem: "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n".into(),
        proxy_address: "proxy.test.example:3128".into(),
        secure: false,
        health: Arc::new(|| vec![("Open connections".into(), "3".into())]),
        people: Arc::new(NoPeople),
        directory: None,
        require_totp: false,
        provider: None,
    }))
}

fn event(time: &str, user: &str, url: &str, verdict: &str, alert: Option<&str>) -> Event {
    Event {
        time: time.into(),
        request_id: "r1".into(),
        client_ip: "10.10.1.5".into(),
        user: Some(user.into()),
        person: None,
        identified_by: String::new(),
        role: "pupil".into(),
        method: "GET".into(),
        host: "www.example.org".into(),
        url: url.into(),
        search_term: alert.map(|_| "how to self harm".into()),
        categories: vec![],
        themes: alert.map(|_| vec!["self-harm".into()]).unwrap_or_default(),
        verdict: verdict.into(),
        alert: alert.map(str::to_owned),
        status: 200,
        ..Event::default()
    }
}

fn seed_store(data: &Path) {
    let mut store = Store::open(&StoreSettings::default(), data).unwrap();
    let now = chrono::Utc::now();
    let t =
        |mins: i64| gatehouse_safeguarding::store::timestamp(now - chrono::Duration::minutes(mins));
    store
        .insert(&[
            event(&t(25), "pupil1", "https://www.example.org/a", "allow", None),
            event(
                &t(20),
                "pupil1",
                "https://www.example.org/search",
                "block",
                Some("high"),
            ),
            event(&t(10), "=cmd|calc", "https://games.example/", "block", None),
        ])
        .unwrap();
}

fn seed_outbox(data: &Path) {
    let mut outbox = Outbox::open(&data.join("outbox.db")).unwrap();
    let now = chrono::Utc::now();
    let at = gatehouse_safeguarding::store::timestamp(now - chrono::Duration::minutes(20));
    outbox
        .transaction(|tx| {
            tx.execute(
                "INSERT INTO alerts (dedup_key, site, user_name, client_ip, role, theme, term, host, url, \
                 search_term, severity, first_seen, last_seen, last_seen_ms, count) \
                 VALUES ('k', NULL, 'pupil1', '10.10.1.5', 'pupil', 'self-harm', 'self harm', \
                 'www.example.org', 'https://www.example.org/search', 'how to self harm', 'high', ?1, ?1, ?2, 1)",
                rusqlite::params![at, now.timestamp_millis()],
            )
        })
        .unwrap();
}

/// A response's status, headers and body text.
struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(router: &Router, req: Request<Body>) -> Reply {
    let mut req = req;
    req.extensions_mut().insert(ConnectInfo(
        "127.0.0.1:50000".parse::<SocketAddr>().unwrap(),
    ));
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn cookie_value(r: &Reply, name: &str) -> Option<String> {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.strip_prefix(&format!("{name}="))
                .map(|v| v.split(';').next().unwrap_or("").to_owned())
        })
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .map(|i| i + marker.len())
        .unwrap_or_else(|| panic!("no {name} field in {body}"));
    body[start..].split('"').next().unwrap().to_owned()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A signed-in person: their session cookie and CSRF token.
struct Who {
    cookie: String,
    csrf: String,
}

async fn sign_in(w: &World, name: &str) -> Who {
    let page = send(
        &w.router,
        Request::get("/login").body(Body::empty()).unwrap(),
    )
    .await;
    let login_csrf = hidden(&page.body, "csrf");
    let login_cookie = cookie_value(&page, "gatehouse-login").unwrap();
    let r = send(
        &w.router,
        Request::post("/login")
            .header(header::COOKIE, format!("gatehouse-login={login_cookie}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form(&[
                ("csrf", &login_csrf),
                ("name", name),
                ("password", PASSWORD),
                ("next", "/"),
            ])))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let cookie = cookie_value(&r, "gatehouse").unwrap();
    let home = send(
        &w.router,
        Request::get("/")
            .header(header::COOKIE, format!("gatehouse={cookie}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(home.status, StatusCode::OK);
    let csrf = hidden(&home.body, "csrf");
    Who { cookie, csrf }
}

async fn get(w: &World, who: Option<&Who>, path: &str) -> Reply {
    let mut req = Request::get(path);
    if let Some(who) = who {
        req = req.header(header::COOKIE, format!("gatehouse={}", who.cookie));
    }
    send(&w.router, req.body(Body::empty()).unwrap()).await
}

async fn post(w: &World, who: &Who, path: &str, pairs: &[(&str, &str)]) -> Reply {
    let mut all = vec![("csrf", who.csrf.as_str())];
    all.extend_from_slice(pairs);
    post_raw(w, Some(who), path, &form(&all), None).await
}

async fn post_raw(
    w: &World,
    who: Option<&Who>,
    path: &str,
    body: &str,
    origin: Option<&str>,
) -> Reply {
    let mut req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "admin.test.example");
    if let Some(who) = who {
        req = req.header(header::COOKIE, format!("gatehouse={}", who.cookie));
    }
    if let Some(o) = origin {
        req = req.header(header::ORIGIN, o);
    }
    send(&w.router, req.body(Body::from(body.to_owned())).unwrap()).await
}

/// Everything that a refused change must leave as it was.
fn state(w: &World) -> (String, usize, u64) {
    let edits = std::fs::read_to_string(w.data.join("policy-edits.toml")).unwrap_or_default();
    let audit = gatehouse_dashboard::audit::recent(&w.db.lock().unwrap(), 10_000)
        .unwrap()
        .len();
    (edits, audit, w.control.live().generation())
}

fn verdict_for(w: &World, role: &str, url: &str) -> Verdict {
    let snap = w.control.live().load();
    let facts = Facts {
        role: snap.role_id(role).unwrap(),
        user: None,
        client: None,
        at: chrono::Utc::now(),
        method: "GET",
        target: Target::Url(url),
    };
    evaluate(&snap, &facts).verdict
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_answers_each_role_as_it_should() {
    let w = world();
    let it = sign_in(&w, "ivy").await;
    let dsl = sign_in(&w, "dee").await;
    let viewer = sign_in(&w, "vic").await;
    // (path, anonymous, it, dsl, viewer): 303 is the sign-in redirect.
    let table: &[(&str, u16, u16, u16, u16)] = &[
        ("/", 303, 200, 200, 200),
        ("/?range=hour", 303, 200, 200, 200),
        ("/?range=week", 303, 200, 200, 200),
        ("/alerts", 303, 403, 200, 403),
        ("/alerts?show=all", 303, 403, 200, 403),
        ("/alerts/1", 303, 403, 200, 403),
        ("/logs", 303, 200, 200, 403),
        ("/logs.csv", 303, 200, 200, 403),
        ("/timeline?person=pupil1", 303, 200, 200, 403),
        ("/policy", 303, 200, 200, 200),
        (
            "/explain?url=https%3A%2F%2Fgames.example%2F&role=pupil",
            303,
            200,
            200,
            200,
        ),
        ("/reviews", 303, 200, 403, 403),
        ("/guests", 303, 200, 403, 403),
        ("/audit", 303, 200, 200, 200),
        ("/setup", 200, 200, 200, 200),
        ("/setup/ca.pem", 200, 200, 200, 200),
        ("/setup/proxy.pac", 200, 200, 200, 200),
        ("/static/app.css", 200, 200, 200, 200),
        ("/login", 200, 200, 200, 200),
        ("/no-such-page", 404, 404, 404, 404),
    ];
    for (path, anon, it_s, dsl_s, viewer_s) in table {
        for (who, expected) in [
            (None, anon),
            (Some(&it), it_s),
            (Some(&dsl), dsl_s),
            (Some(&viewer), viewer_s),
        ] {
            let r = get(&w, who, path).await;
            assert_eq!(
                r.status.as_u16(),
                *expected,
                "GET {path} as {:?}: {}",
                who.map(|_| "someone"),
                r.body
            );
            if r.status == StatusCode::FORBIDDEN {
                assert!(
                    r.body.contains("This needs"),
                    "{path}: the refusal says what is needed"
                );
            }
        }
    }
    let r = get(&w, None, "/alerts").await;
    assert_eq!(r.headers[header::LOCATION], "/login?next=%2Falerts");
    // Security headers on every page, and nothing loaded from elsewhere.
    let r = get(&w, Some(&it), "/").await;
    let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY");
    assert!(
        !r.body.contains("http://") && !r.body.contains("https://"),
        "no external resources: {}",
        r.body
    );
    assert!(r.body.contains("<svg"), "the overview draws charts");
    assert!(
        r.body.contains("id=\"total-blocked\">2<"),
        "two blocked requests in the last day: {}",
        r.body
    );
    // The viewer sees the policy but not a single enabled control.
    let r = get(&w, Some(&viewer), "/policy").await;
    assert!(r.body.contains("only IT accounts can change it"));
    assert_eq!(
        r.body.matches("<button").count(),
        1,
        "no button for a viewer but sign-out: {}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_change_is_refused_to_roles_that_may_not_make_it() {
    let w = world();
    let dsl = sign_in(&w, "dee").await;
    let viewer = sign_in(&w, "vic").await;
    let it = sign_in(&w, "ivy").await;
    let posts: &[(&str, Fields, &[&str])] = &[
        (
            "/policy/grid",
            &[("cell:pupil:games", "block")],
            &["dsl", "viewer"],
        ),
        (
            "/policy/category-alert",
            &[("role", "pupil"), ("category", "games"), ("alert", "low")],
            &["dsl", "viewer"],
        ),
        (
            "/policy/themes",
            &[
                ("theme:staff:self-harm", "log"),
                ("alert:staff:self-harm", "low"),
            ],
            &["dsl", "viewer"],
        ),
        (
            "/policy/role",
            &[
                ("role", "pupil"),
                ("safesearch", "off"),
                ("decrypt_https", "on"),
            ],
            &["dsl", "viewer"],
        ),
        (
            "/policy/local",
            &[("list", "deny"), ("op", "add"), ("entry", "bad.example")],
            &["dsl", "viewer"],
        ),
        (
            "/policy/no-decrypt",
            &[("op", "add"), ("entry", "nhs.uk")],
            &["dsl", "viewer"],
        ),
        (
            "/policy/time-band",
            &[
                ("op", "add"),
                ("role", "staff"),
                ("categories", "games"),
                ("action", "block"),
                ("days", "mon-fri"),
                ("from", "09:00"),
                ("to", "10:00"),
            ],
            &["dsl", "viewer"],
        ),
        (
            "/guests",
            &[("count", "1"), ("hours", "2"), ("role", "guest")],
            &["dsl", "viewer"],
        ),
        ("/reviews/1", &[("decision", "decline")], &["dsl", "viewer"]),
        ("/alerts/1", &[("action", "acknowledge")], &["it", "viewer"]),
    ];
    for (path, fields, refused) in posts {
        let before = state(&w);
        for name in *refused {
            let who = match *name {
                "dsl" => &dsl,
                "viewer" => &viewer,
                _ => &it,
            };
            let r = post(&w, who, path, fields).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "POST {path} as {name}: {}",
                r.body
            );
            assert!(r.body.contains("Nothing was changed"), "{path}: {}", r.body);
        }
        // No session at all, and a session without the form's token.
        let r = post_raw(&w, None, path, &form(fields), None).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "POST {path} without a session"
        );
        let allowed = if refused.contains(&"it") { &dsl } else { &it };
        let r = post_raw(&w, Some(allowed), path, &form(fields), None).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "POST {path} without a CSRF token: {}",
            r.body
        );
        assert!(r.body.contains("security token"), "{}", r.body);
        let mut with_token = vec![("csrf", allowed.csrf.as_str())];
        with_token.extend_from_slice(fields);
        let r = post_raw(
            &w,
            Some(allowed),
            path,
            &form(&with_token),
            Some("https://evil.example"),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "POST {path} from another site: {}",
            r.body
        );
        assert_eq!(state(&w), before, "{path}: nothing changed");
    }
    assert_eq!(
        verdict_for(&w, "pupil", "https://games.example/"),
        Verdict::Allow
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_form_input_gets_a_clear_message_and_changes_nothing() {
    let w = world();
    let it = sign_in(&w, "ivy").await;
    let dsl = sign_in(&w, "dee").await;
    let cases: &[(&str, Fields, &str)] = &[
        (
            "/policy/grid",
            &[("cell:pupil:games", "forbid")],
            "is not an action",
        ),
        (
            "/policy/grid",
            &[("cell:pupil:no-such-category", "block")],
            "is not a category",
        ),
        (
            "/policy/grid",
            &[("cell:teachers:games", "block")],
            "is not a role",
        ),
        (
            "/policy/grid",
            &[("cell:pupil", "block")],
            "is not role:category",
        ),
        (
            "/policy/category-alert",
            &[
                ("role", "pupil"),
                ("category", "games"),
                ("alert", "urgent"),
            ],
            "must be none, low",
        ),
        (
            "/policy/themes",
            &[
                ("theme:pupil:self-harm", "block"),
                ("alert:pupil:self-harm", "loud"),
            ],
            "must be none, low",
        ),
        (
            "/policy/themes",
            &[("theme:pupil:astrology", "block")],
            "is not a theme",
        ),
        (
            "/policy/role",
            &[
                ("role", "pupil"),
                ("safesearch", "maybe"),
                ("decrypt_https", "on"),
            ],
            "must be on or off",
        ),
        (
            "/policy/role",
            &[("safesearch", "on"), ("decrypt_https", "on")],
            "missing \u{201c}role\u{201d}",
        ),
        (
            "/policy/local",
            &[("list", "allow"), ("op", "add"), ("entry", "not a host")],
            "is not a host or URL prefix",
        ),
        (
            "/policy/local",
            &[("list", "maybe"), ("op", "add"), ("entry", "x.example")],
            "allow or deny",
        ),
        (
            "/policy/local",
            &[("list", "allow"), ("op", "add"), ("entry", "bbc.co.uk")],
            "already on the list",
        ),
        (
            "/policy/no-decrypt",
            &[("op", "add"), ("entry", "bank.example/path")],
            "host name",
        ),
        (
            "/policy/no-decrypt",
            &[("op", "remove"), ("entry", "nothere.example")],
            "not on the list",
        ),
        (
            "/policy/time-band",
            &[
                ("op", "add"),
                ("role", "staff"),
                ("categories", "games"),
                ("action", "allow"),
                ("days", "mon-fri"),
                ("from", "25:00"),
                ("to", "26:00"),
            ],
            "From:",
        ),
        (
            "/policy/time-band",
            &[
                ("op", "add"),
                ("role", "staff"),
                ("categories", "nothing"),
                ("action", "allow"),
                ("days", "mon-fri"),
                ("from", "09:00"),
                ("to", "10:00"),
            ],
            "is not a category",
        ),
        (
            "/policy/time-band",
            &[("op", "remove"), ("role", "staff"), ("index", "7")],
            "no such time band",
        ),
        (
            "/guests",
            &[("count", "0"), ("hours", "2"), ("role", "guest")],
            "from 1 to 200",
        ),
        (
            "/guests",
            &[("count", "2"), ("hours", "9999"), ("role", "guest")],
            "1 to 744",
        ),
        (
            "/guests",
            &[("count", "2"), ("hours", "2"), ("role", "visitor")],
            "is not a role",
        ),
        ("/reviews/99", &[("decision", "approve")], "no such request"),
    ];
    for (path, fields, says) in cases {
        let before = state(&w);
        let r = post(&w, &it, path, fields).await;
        assert!(
            r.status.is_client_error(),
            "POST {path} {fields:?}: {} {}",
            r.status,
            r.body
        );
        assert!(
            r.body.contains(says),
            "POST {path} {fields:?} should say {says:?}: {}",
            r.body
        );
        assert_eq!(state(&w), before, "{path} {fields:?}: nothing changed");
    }
    for (fields, says) in [
        (&[("action", "resolve")][..], "Choose an outcome"),
        (
            &[("action", "note"), ("note", "  ")][..],
            "The note is empty",
        ),
        (&[("action", "delete")][..], "Unknown action"),
    ] {
        let r = post(&w, &dsl, "/alerts/1", fields).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains(says), "{}", r.body);
    }
    let r = post(&w, &dsl, "/alerts/42", &[("action", "acknowledge")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A bad search is answered on the page, naming the field.
    let r = get(&w, Some(&it), "/logs?ip=not-an-ip").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("\u{201c}ip\u{201d} must be an IP address"),
        "{}",
        r.body
    );
    let r = get(&w, Some(&it), "/logs?from=yesterday").await;
    assert!(
        r.body
            .contains("\u{201c}from\u{201d} must be a date and time"),
        "{}",
        r.body
    );
    let r = get(
        &w,
        Some(&it),
        "/explain?url=https%3A%2F%2Fx.example%2F&role=teachers",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("is not a role"));
    let r = get(&w, Some(&it), "/timeline?person=pupil1&days=1000").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn it_changes_apply_live_survive_a_restart_and_are_audited() {
    let w = world();
    let it = sign_in(&w, "ivy").await;
    let g0 = w.control.live().generation();
    assert_eq!(
        verdict_for(&w, "pupil", "https://games.example/"),
        Verdict::Allow
    );
    let r = post(
        &w,
        &it,
        "/policy/grid",
        &[("cell:pupil:games", "block"), ("cell:staff:games", "allow")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(w.control.live().generation(), g0 + 1);
    assert_eq!(
        verdict_for(&w, "pupil", "https://games.example/"),
        Verdict::Block
    );
    assert_eq!(
        verdict_for(&w, "staff", "https://games.example/"),
        Verdict::Allow
    );
    for (path, fields) in [
        (
            "/policy/local",
            &[
                ("list", "deny"),
                ("op", "add"),
                ("entry", "https://Bad.Example/"),
            ][..],
        ),
        (
            "/policy/local",
            &[("list", "allow"), ("op", "remove"), ("entry", "bbc.co.uk")][..],
        ),
        (
            "/policy/no-decrypt",
            &[("op", "add"), ("entry", "nhs.uk")][..],
        ),
        (
            "/policy/role",
            &[
                ("role", "pupil"),
                ("safesearch", "off"),
                ("decrypt_https", "on"),
            ][..],
        ),
        (
            "/policy/themes",
            &[
                ("theme:staff:self-harm", "log"),
                ("alert:staff:self-harm", "low"),
            ][..],
        ),
    ] {
        let r = post(&w, &it, path, fields).await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "{path} {fields:?}: {}",
            r.body
        );
    }
    let r = post(
        &w,
        &it,
        "/policy/time-band",
        &[
            ("op", "add"),
            ("role", "staff"),
            ("name", "lunch"),
            ("categories", "social-media"),
            ("action", "block"),
            ("days", "all"),
            ("from", "00:00"),
            ("to", "24:00"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        verdict_for(&w, "pupil", "https://bad.example/x"),
        Verdict::Block
    );
    assert_eq!(
        verdict_for(&w, "staff", "https://social.example/"),
        Verdict::Block
    );
    assert!(w.control.no_decrypt().contains(&"nhs.uk".to_owned()));
    let snap = w.control.live().load();
    assert!(
        !snap
            .role(snap.role_id("pupil").unwrap())
            .unwrap()
            .safesearch
    );
    // The page shows the new state.
    let page = get(&w, Some(&it), "/policy").await;
    assert!(page
        .body
        .contains("<option value=\"block\" selected>block</option>"));
    assert!(
        page.body.contains("<code>bad.example</code>"),
        "{}",
        page.body.split("id=\"allow\"").nth(1).unwrap_or("")
    );
    assert!(!page.body.contains("<code>bbc.co.uk</code>"));
    // Audit: who, what, before and after, per cell.
    let audit = get(&w, Some(&it), "/audit").await;
    assert!(
        audit.body.contains("roles.pupil.categories.games"),
        "{}",
        audit.body
    );
    let entries = gatehouse_dashboard::audit::recent(&w.db.lock().unwrap(), 100).unwrap();
    let games = entries
        .iter()
        .find(|e| e.target == "roles.pupil.categories.games")
        .unwrap();
    assert_eq!(
        (
            games.actor.as_str(),
            games.before.as_str(),
            games.after.as_str()
        ),
        ("ivy", "allow", "block")
    );
    assert!(
        !entries
            .iter()
            .any(|e| e.target == "roles.staff.categories.games"),
        "an unchanged cell is not a change"
    );
    // The trail cannot be edited, even from SQL.
    let db = w.db.lock().unwrap();
    let err = gatehouse_dashboard::Db::open(&w.data.join("admin.db")).unwrap();
    drop(err);
    drop(db);
    let conn = rusqlite::Connection::open(w.data.join("admin.db")).unwrap();
    assert!(conn
        .execute("UPDATE audit SET actor = 'someone else'", [])
        .is_err());
    assert!(conn.execute("DELETE FROM audit", []).is_err());
    // A restart (a new control over the same files) keeps every edit.
    let (control, _, _) = open(&w.root);
    let snap = control.live().load();
    let facts = Facts {
        role: snap.role_id("pupil").unwrap(),
        user: None,
        client: None,
        at: chrono::Utc::now(),
        method: "GET",
        target: Target::Url("https://games.example/"),
    };
    assert_eq!(evaluate(&snap, &facts).verdict, Verdict::Block);
    assert!(control.no_decrypt().contains(&"nhs.uk".to_owned()));
    // Removing the band again.
    let r = post(
        &w,
        &it,
        "/policy/time-band",
        &[("op", "remove"), ("role", "staff"), ("index", "0")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        verdict_for(&w, "staff", "https://social.example/"),
        Verdict::Allow
    );
}

/// Posts the "Pages, downloads and AI" row for `role`: the defaults (alert, no limit, every
/// kind allowed, categories decide) with `changes` over them.
async fn post_content(w: &World, who: &Who, role: &str, changes: &[(&str, &str)]) -> Reply {
    let mut pairs: Vec<(String, String)> = vec![
        ("role".into(), role.into()),
        ("page_text".into(), "alert".into()),
        ("max_download_mib".into(), "0".into()),
        ("ai_only".into(), "categories decide".into()),
    ];
    for kind in gatehouse_rules::files::FileKind::ALL {
        pairs.push((format!("file.{}", kind.name()), "allow".into()));
    }
    for (k, v) in changes {
        match pairs.iter_mut().find(|(f, _)| f == k) {
            Some(p) => p.1 = (*v).to_owned(),
            None => pairs.push(((*k).to_owned(), (*v).to_owned())),
        }
    }
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    post(w, who, "/policy/content", &refs).await
}

#[tokio::test(flavor = "multi_thread")]
async fn page_reading_downloads_and_ai_services_are_set_per_role_live_and_audited() {
    use gatehouse_rules::config::PageText;
    use gatehouse_rules::files::FileKind;
    let w = world();
    let it = sign_in(&w, "ivy").await;
    let r = post_content(
        &w,
        &it,
        "pupil",
        &[
            ("page_text", "hold"),
            ("max_download_mib", "20"),
            ("file.executable", "block"),
            ("file.video", "log"),
            ("ai_only", "only these"),
            ("ai.gemini", "on"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let snap = w.control.live().load();
    let pupil = snap.role(snap.role_id("pupil").unwrap()).unwrap();
    assert_eq!(pupil.page_text, PageText::Hold);
    assert_eq!(pupil.max_download_bytes, Some(20 << 20));
    assert_eq!(
        pupil.file_action(FileKind::Executable).action(),
        Action::Block
    );
    assert_eq!(pupil.file_action(FileKind::Video).action(), Action::Log);
    assert_eq!(
        verdict_for(&w, "pupil", "https://gemini.google.com/app"),
        Verdict::Allow
    );
    assert_eq!(
        verdict_for(&w, "pupil", "https://chatgpt.com/"),
        Verdict::Block
    );
    assert_eq!(
        verdict_for(&w, "staff", "https://chatgpt.com/"),
        Verdict::Allow
    );
    // The page shows it; the trail has each change with before and after.
    let page = get(&w, Some(&it), "/policy").await;
    assert!(
        page.body
            .contains("name=\"ai.gemini\" value=\"on\" checked"),
        "{}",
        page.body
    );
    let entries = gatehouse_dashboard::audit::recent(&w.db.lock().unwrap(), 100).unwrap();
    let ai = entries
        .iter()
        .find(|e| e.target == "roles.pupil.ai_services")
        .unwrap();
    assert_eq!(
        (ai.before.as_str(), ai.after.as_str()),
        ("categories decide", "gemini")
    );
    for target in [
        "roles.pupil.page_text",
        "roles.pupil.max_download_mib",
        "roles.pupil.files.executable",
    ] {
        assert!(entries.iter().any(|e| e.target == target), "{target}");
    }
    // Back: the categories decide, no limit; only what changed is recorded.
    let r = post_content(
        &w,
        &it,
        "pupil",
        &[
            ("file.executable", "block"),
            ("file.video", "log"),
            ("page_text", "hold"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let snap = w.control.live().load();
    let pupil = snap.role(snap.role_id("pupil").unwrap()).unwrap();
    assert_eq!(pupil.max_download_bytes, None);
    assert!(pupil.ai_approved.is_none());
    assert_eq!(
        pupil.file_action(FileKind::Executable).action(),
        Action::Block
    );
    // Only these, none ticked: every AI service blocked.
    let r = post_content(&w, &it, "staff", &[("ai_only", "only these")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        verdict_for(&w, "staff", "https://chatgpt.com/"),
        Verdict::Block
    );
    // Bad values are refused with a message and change nothing.
    let dsl = sign_in(&w, "dee").await;
    let before = state(&w);
    for (changes, says) in [
        (vec![("page_text", "loud")], "must be alert, hold or off"),
        (vec![("max_download_mib", "-1")], "whole number of MiB"),
        (
            vec![("max_download_mib", "99999999999")],
            "whole number of MiB",
        ),
        (
            vec![("file.executable", "maybe")],
            "must be allow, log, warn or block",
        ),
        (vec![("ai_only", "sometimes")], "must be"),
    ] {
        let r = post_content(&w, &it, "pupil", &changes).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{changes:?}");
        assert!(r.body.contains(says), "{changes:?}: {}", r.body);
    }
    assert_eq!(state(&w), before);
    // The DSL may read the page, not change it.
    let r = post_content(&w, &dsl, "pupil", &[]).await;
    assert_ne!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(state(&w), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dsl_triages_an_alert_with_its_evidence_and_history() {
    let w = world();
    let dsl = sign_in(&w, "dee").await;
    let inbox = get(&w, Some(&dsl), "/alerts").await;
    assert!(
        inbox.body.contains("how to self harm") && inbox.body.contains("pupil1"),
        "{}",
        inbox.body
    );
    let detail = get(&w, Some(&dsl), "/alerts/1").await;
    assert!(detail.body.contains("Requests around it"));
    assert!(
        detail.body.contains("https://www.example.org/a"),
        "the surrounding requests: {}",
        detail.body
    );
    for fields in [
        &[("action", "acknowledge")][..],
        &[("action", "note"), ("note", "Spoke to form tutor")][..],
        &[
            ("action", "resolve"),
            ("outcome", "no-concern"),
            ("note", "Researching for PSHE"),
        ][..],
    ] {
        let r = post(&w, &dsl, "/alerts/1", fields).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    }
    let detail = get(&w, Some(&dsl), "/alerts/1").await;
    assert!(
        detail
            .body
            .contains("id=\"alert-state\">Resolved: no concern<"),
        "{}",
        detail.body
    );
    assert!(
        detail.body.contains("Spoke to form tutor") && detail.body.contains("Researching for PSHE")
    );
    assert!(get(&w, Some(&dsl), "/alerts")
        .await
        .body
        .contains("No alerts here"));
    let resolved = get(&w, Some(&dsl), "/alerts?show=resolved").await;
    assert!(resolved.body.contains("pupil1"));
    let history = get(&w, Some(&dsl), "/alerts?show=all&person=pupil1").await;
    assert!(history.body.contains("History of <strong>pupil1</strong>"));
    let audit = gatehouse_dashboard::audit::recent(&w.db.lock().unwrap(), 100).unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "alert-triage" && e.after.contains("resolved:no-concern")));
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_search_export_and_timeline() {
    let w = world();
    let it = sign_in(&w, "ivy").await;
    let r = get(&w, Some(&it), "/logs?user=pupil1&verdict=block").await;
    assert!(r.body.contains("1 request "), "{}", r.body);
    let r = get(&w, Some(&it), "/logs?flagged=on").await;
    assert!(r.body.contains("how to self harm"));
    let csv = get(&w, Some(&it), "/logs.csv").await;
    assert_eq!(csv.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert!(csv.body.starts_with("time,client_ip,user,role"));
    assert_eq!(csv.body.lines().count(), 4, "{}", csv.body);
    assert!(
        csv.body.contains("\"'=cmd|calc\""),
        "a formula-looking cell is defused: {}",
        csv.body
    );
    let t = get(&w, Some(&it), "/timeline?person=pupil1").await;
    assert!(
        t.body.contains("2 requests by <strong>pupil1</strong>"),
        "{}",
        t.body
    );
    assert!(t.body.contains("flagged"));
    let audit = gatehouse_dashboard::audit::recent(&w.db.lock().unwrap(), 100).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "logs-export" && e.actor == "ivy"),
        "exports are audited"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_review_request_is_approved_for_a_role_and_a_time() {
    let w = world();
    let it = sign_in(&w, "ivy").await;
    let db = Arc::clone(&w.db);
    let id = {
        let db = db.lock().unwrap();
        gatehouse_dashboard::reviews::submit(
            &db,
            &gatehouse_dashboard::reviews::NewReview {
                user: Some("pupil1".into()),
                client_ip: "10.10.1.5".into(),
                role: "pupil".into(),
                url: "https://social.example/class-page".into(),
                reason: "Our class page for the project".into(),
                request_id: "abc-1".into(),
            },
        )
        .unwrap()
        .unwrap()
    };
    let queue = get(&w, Some(&it), "/reviews").await;
    assert!(queue.body.contains("Our class page for the project"));
    assert_eq!(
        verdict_for(&w, "pupil", "https://social.example/class-page"),
        Verdict::Block
    );
    let r = post(
        &w,
        &it,
        &format!("/reviews/{id}"),
        &[
            ("decision", "approve"),
            ("role", "pupil"),
            ("duration", "1d"),
            ("scope", "host"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        verdict_for(&w, "pupil", "https://social.example/class-page"),
        Verdict::Allow
    );
    assert!(
        w.control.next_expiry().is_some(),
        "the approval runs out by itself"
    );
    let r = post(
        &w,
        &it,
        &format!("/reviews/{id}"),
        &[("decision", "decline")],
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a decided request cannot be decided again"
    );
    let edits = std::fs::read_to_string(w.data.join("policy-edits.toml")).unwrap();
    assert!(
        edits.contains("social.example") && edits.contains("until"),
        "{edits}"
    );
    let audit = gatehouse_dashboard::audit::recent(&w.db.lock().unwrap(), 100).unwrap();
    assert!(audit
        .iter()
        .any(|e| e.target == "roles.pupil.allow" && e.after.contains("social.example")));
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_vouchers_log_in_until_revoked() {
    use base64::Engine as _;
    let w = world();
    let it = sign_in(&w, "ivy").await;
    let r = post(
        &w,
        &it,
        "/guests",
        &[
            ("count", "3"),
            ("hours", "2"),
            ("role", "guest"),
            ("note", "Governors' meeting"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body.matches("class=\"voucher\"").count(), 3);
    let name = r
        .body
        .split("class=\"voucher-name\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let code = r
        .body
        .split("class=\"voucher-code\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let basic = |user: &str, pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    };
    let now = chrono::Utc::now();
    assert_eq!(
        w.vouchers.authenticate(&basic(&name, &code), now),
        Some((name.clone(), "guest".into()))
    );
    assert_eq!(
        w.vouchers
            .authenticate(&basic(&name, &code.to_lowercase()), now),
        Some((name.clone(), "guest".into())),
        "codes are not case-sensitive"
    );
    assert_eq!(
        w.vouchers.authenticate(&basic(&name, "WRONG-CODE1"), now),
        None
    );
    assert_eq!(
        w.vouchers
            .authenticate(&basic(&name, &code), now + chrono::Duration::hours(3)),
        None,
        "expired"
    );
    let list = get(&w, Some(&it), "/guests").await;
    assert!(list.body.contains(&name) && list.body.contains("Governors"));
    assert!(
        !list.body.contains(&code),
        "a code is shown once, when it is made"
    );
    let r = post(&w, &it, &format!("/guests/{name}/revoke"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        w.vouchers.authenticate(&basic(&name, &code), now),
        None,
        "revoked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_is_protected_and_sessions_end() {
    let w = world();
    // The sign-in form's own CSRF cookie is required.
    let r = post_raw(
        &w,
        None,
        "/login",
        &form(&[("csrf", "x"), ("name", "ivy"), ("password", PASSWORD)]),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let page = send(
        &w.router,
        Request::get("/login").body(Body::empty()).unwrap(),
    )
    .await;
    let set = page.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let csrf = hidden(&page.body, "csrf");
    let cookie = cookie_value(&page, "gatehouse-login").unwrap();
    let attempt = |password: &'static str, name: &'static str| {
        let (csrf, cookie) = (csrf.clone(), cookie.clone());
        let router = w.router.clone();
        async move {
            send(
                &router,
                Request::post("/login")
                    .header(header::COOKIE, format!("gatehouse-login={cookie}"))
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(form(&[
                        ("csrf", &csrf),
                        ("name", name),
                        ("password", password),
                        ("next", "//evil.example/"),
                    ])))
                    .unwrap(),
            )
            .await
        }
    };
    let r = attempt("wrong password", "nobody").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("do not match"));
    for _ in 0..5 {
        assert_eq!(
            attempt("wrong password", "ivy").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = attempt(PASSWORD, "ivy").await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "locked after five failures, even with the right password"
    );
    assert!(r.body.contains("Too many failed sign-ins"));
    // Another account from the same address still signs in; `next` never leaves the page.
    let r = attempt(PASSWORD, "dee").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/");
    let session = r
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("gatehouse="))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let who = Who {
        cookie: session
            .trim_start_matches("gatehouse=")
            .split(';')
            .next()
            .unwrap()
            .to_owned(),
        csrf: String::new(),
    };
    let home = get(&w, Some(&who), "/").await;
    let who = Who {
        csrf: hidden(&home.body, "csrf"),
        ..who
    };
    let r = post(&w, &who, "/logout", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        get(&w, Some(&who), "/").await.status,
        StatusCode::SEE_OTHER,
        "the session is gone"
    );
}

/// Attacks on the sign-in and the pages, each once a finding: 150 concurrent guesses used
/// to check 79 passwords against a limit of 5 (the limit was checked before the slow check
/// and counted after); `next` with a tab was an open redirect and a newline a 500; a `role`
/// on the explain page was printed as markup.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_guesses_redirect_tricks_and_markup_in_parameters_are_refused() {
    let w = world();
    let page = send(
        &w.router,
        Request::get("/login").body(Body::empty()).unwrap(),
    )
    .await;
    let csrf = hidden(&page.body, "csrf");
    let cookie = cookie_value(&page, "gatehouse-login").unwrap();
    let attempt = |name: &'static str, password: String, next: &'static str| {
        let (csrf, cookie) = (csrf.clone(), cookie.clone());
        let router = w.router.clone();
        async move {
            send(
                &router,
                Request::post("/login")
                    .header(header::COOKIE, format!("gatehouse-login={cookie}"))
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(form(&[
                        ("csrf", &csrf),
                        ("name", name),
                        ("password", &password),
                        ("next", next),
                    ])))
                    .unwrap(),
            )
            .await
        }
    };
    let guesses: Vec<_> = (0..150)
        .map(|i| tokio::spawn(attempt("dee", format!("wrong guess {i}"), "/")))
        .collect();
    let (mut checked, mut limited) = (0, 0);
    for guess in guesses {
        match guess.await.unwrap().status {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!(checked + limited, 150);
    assert!(checked <= 5, "{checked} passwords were checked");
    // `next` with a tab, a newline or a backslash goes to the start page, never elsewhere.
    for next in [
        "/\t/evil.example/",
        "/\n/evil.example/",
        "/\\evil.example/",
        "/\r\nSet-Cookie: x=1",
    ] {
        let r = attempt("vic", PASSWORD.to_owned(), next).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{next:?}: {}", r.body);
        assert_eq!(r.headers[header::LOCATION], "/", "{next:?}");
    }
    let it = sign_in(&w, "ivy").await;
    let r = get(
        &w,
        Some(&it),
        "/explain?url=https%3A%2F%2Fx.example%2F&role=%3Cmeta%20http-equiv%3Drefresh%20content%3D0%3Burl%3D%2F%2Fevil.example%3E",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!r.body.contains("<meta http-equiv"), "{}", r.body);
    assert!(r.body.contains("&lt;meta"), "{}", r.body);
}
