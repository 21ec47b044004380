//! The PostgreSQL back end, for a trust whose proxies share one store: batches go in with
//! binary `COPY`, labels (categories and themes) sit in an array column with a GIN index,
//! and a lost connection is re-opened on the next call.

use super::{join_list, limit_of, normalise_time, split_list, Kind, Query};
use crate::event::Event;
use crate::Error;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Client, Config, NoTls};

pub struct PgStore {
    config: Config,
    client: Option<Client>,
}

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE events (
  id BIGSERIAL PRIMARY KEY,
  time TEXT COLLATE "C" NOT NULL,
  request_id TEXT NOT NULL,
  client_ip TEXT COLLATE "C" NOT NULL,
  user_name TEXT COLLATE "C",
  role TEXT NOT NULL,
  site TEXT,
  method TEXT NOT NULL,
  host TEXT NOT NULL,
  url TEXT NOT NULL,
  search_term TEXT,
  categories TEXT NOT NULL,
  themes TEXT NOT NULL,
  terms TEXT NOT NULL,
  verdict TEXT COLLATE "C" NOT NULL,
  alert TEXT,
  sensitive BOOLEAN NOT NULL,
  flagged BOOLEAN NOT NULL,
  rule TEXT NOT NULL,
  reason TEXT NOT NULL,
  status INTEGER NOT NULL,
  bytes BIGINT,
  duration_ms DOUBLE PRECISION NOT NULL,
  decrypted BOOLEAN NOT NULL,
  labels TEXT[] NOT NULL
);
CREATE INDEX events_time ON events(time);
CREATE INDEX events_user ON events(user_name, time) WHERE user_name IS NOT NULL;
CREATE INDEX events_ip ON events(client_ip, time);
CREATE INDEX events_verdict ON events(verdict, time) WHERE verdict <> 'allow';
CREATE INDEX events_flagged ON events(time) WHERE flagged;
CREATE INDEX events_labels ON events USING GIN (labels)
  WITH (fastupdate = on, gin_pending_list_limit = 65536) WHERE labels <> '{}';
"#,
    r#"
CREATE TABLE event_minutes (
  minute TEXT COLLATE "C" PRIMARY KEY,
  requests BIGINT NOT NULL,
  blocked BIGINT NOT NULL,
  alerting BIGINT NOT NULL
);
CREATE TABLE event_tops (
  hour TEXT COLLATE "C" NOT NULL,
  kind TEXT COLLATE "C" NOT NULL,
  key TEXT NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (hour, kind, key)
);
INSERT INTO event_minutes SELECT substr(time, 1, 16), COUNT(*),
  COUNT(*) FILTER (WHERE verdict = 'block'), COUNT(*) FILTER (WHERE alert IS NOT NULL)
  FROM events GROUP BY 1;
INSERT INTO event_tops SELECT substr(time, 1, 13), 'label', l, COUNT(*)
  FROM events, unnest(labels) AS l WHERE verdict = 'block' GROUP BY 1, 3;
INSERT INTO event_tops SELECT substr(time, 1, 13), 'host', host, COUNT(*)
  FROM events WHERE verdict = 'block' GROUP BY 1, 3;
INSERT INTO event_tops SELECT substr(time, 1, 13), 'person', COALESCE(user_name, client_ip), COUNT(*)
  FROM events WHERE flagged GROUP BY 1, 3;
"#,
];

const COLUMNS: &str = "time, request_id, client_ip, user_name, role, site, method, host, url, \
search_term, categories, themes, terms, verdict, alert, sensitive, flagged, rule, reason, status, \
bytes, duration_ms, decrypted";

/// Serialises migrations when several proxies start at once.
const MIGRATION_LOCK: i64 = 0x6761_7465_686f;

impl PgStore {
    pub fn open(url: &str, password: Option<&str>) -> Result<PgStore, Error> {
        let mut config: Config = url
            .parse()
            .map_err(|e| Error::Config(format!("[store] url: {e}")))?;
        if let Some(p) = password {
            config.password(p);
        }
        config.connect_timeout(std::time::Duration::from_secs(5));
        let mut store = PgStore {
            config,
            client: None,
        };
        store.migrate().map_err(|e| Error::store("postgres", e))?;
        Ok(store)
    }

    /// The connection, opened again if it was lost (the server restarted, a network blip).
    fn client(&mut self) -> Result<&mut Client, postgres::Error> {
        let client = match self.client.take() {
            Some(c) if !c.is_closed() => c,
            _ => self.config.connect(NoTls)?,
        };
        Ok(self.client.insert(client))
    }

    fn migrate(&mut self) -> Result<(), postgres::Error> {
        let client = self.client()?;
        client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
        let result = (|| {
            client.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
            )?;
            let done: i32 = client
                .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?
                .get(0);
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
                let mut tx = client.transaction()?;
                tx.batch_execute(sql)?;
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES ($1)",
                    &[&(i as i32 + 1)],
                )?;
                tx.commit()?;
            }
            Ok(())
        })();
        client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])?;
        result
    }

    pub fn insert(&mut self, events: &[Event]) -> Result<(), Error> {
        self.insert_inner(events)
            .map_err(|e| Error::store("postgres", e))
    }

    fn insert_inner(&mut self, events: &[Event]) -> Result<(), postgres::Error> {
        let client = self.client()?;
        let mut tx = client.transaction()?;
        let sink = tx.copy_in(&format!(
            "COPY events ({COLUMNS}, labels) FROM STDIN BINARY"
        ))?;
        let types = [
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::BOOL,
            Type::BOOL,
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::INT8,
            Type::FLOAT8,
            Type::BOOL,
            Type::TEXT_ARRAY,
        ];
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for e in events {
            let time = normalise_time(&e.time);
            let (categories, themes, terms) = (
                join_list(&e.categories),
                join_list(&e.themes),
                join_list(&e.terms),
            );
            let status = i32::from(e.status);
            let bytes = e.bytes.map(|b| b as i64);
            let flagged = e.flagged();
            let labels: Vec<&str> = e
                .categories
                .iter()
                .chain(&e.themes)
                .map(String::as_str)
                .collect();
            let row: [&(dyn ToSql + Sync); 24] = [
                &time,
                &e.request_id,
                &e.client_ip,
                &e.user,
                &e.role,
                &e.site,
                &e.method,
                &e.host,
                &e.url,
                &e.search_term,
                &categories,
                &themes,
                &terms,
                &e.verdict,
                &e.alert,
                &e.sensitive,
                &flagged,
                &e.rule,
                &e.reason,
                &status,
                &bytes,
                &e.duration_ms,
                &e.decrypted,
                &labels,
            ];
            writer.write(&row)?;
        }
        writer.finish()?;
        // The overview's counts, one statement each (arrays unnested on the server).
        let tallies = super::Tallies::of(events);
        let (mut minutes, mut requests, mut blocked, mut alerting) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (m, (n, b, a)) in &tallies.minutes {
            minutes.push(m.as_str());
            requests.push(*n);
            blocked.push(*b);
            alerting.push(*a);
        }
        tx.execute(
            "INSERT INTO event_minutes (minute, requests, blocked, alerting) \
             SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[]) \
             ON CONFLICT (minute) DO UPDATE SET requests = event_minutes.requests + excluded.requests, \
             blocked = event_minutes.blocked + excluded.blocked, \
             alerting = event_minutes.alerting + excluded.alerting",
            &[&minutes, &requests, &blocked, &alerting],
        )?;
        let (mut hours, mut kinds, mut keys, mut counts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((hour, kind, key), n) in &tallies.tops {
            hours.push(hour.as_str());
            kinds.push(*kind);
            keys.push(key.as_str());
            counts.push(*n);
        }
        tx.execute(
            "INSERT INTO event_tops (hour, kind, key, n) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[]) \
             ON CONFLICT (hour, kind, key) DO UPDATE SET n = event_tops.n + excluded.n",
            &[&hours, &kinds, &keys, &counts],
        )?;
        tx.commit()
    }

    pub fn purge_tallies(&mut self, before: &str) -> Result<(), Error> {
        let run = |client: &mut Client| -> Result<(), postgres::Error> {
            client.execute(
                "DELETE FROM event_minutes WHERE minute < substr($1, 1, 16)",
                &[&before],
            )?;
            client.execute(
                "DELETE FROM event_tops WHERE hour < substr($1, 1, 13)",
                &[&before],
            )?;
            Ok(())
        };
        self.client()
            .and_then(run)
            .map_err(|e| Error::store("postgres", e))
    }

    pub fn query(&mut self, q: &Query) -> Result<Vec<Event>, Error> {
        self.query_inner(q).map_err(|e| Error::store("postgres", e))
    }

    pub fn summary(
        &mut self,
        since: &str,
        bucket_chars: usize,
        top: usize,
    ) -> Result<super::Summary, Error> {
        self.summary_inner(since, bucket_chars, top)
            .map_err(|e| Error::store("postgres", e))
    }

    fn summary_inner(
        &mut self,
        since: &str,
        bucket_chars: usize,
        top: usize,
    ) -> Result<super::Summary, postgres::Error> {
        let top = top as i64;
        let client = self.client()?;
        let mut tops = |kind: &str| -> Result<Vec<(String, i64)>, postgres::Error> {
            Ok(client
                .query(
                    "SELECT key, SUM(n)::int8 FROM event_tops \
                     WHERE hour >= substr($1, 1, 13) AND kind = $2 \
                     GROUP BY key ORDER BY 2 DESC, 1 LIMIT $3",
                    &[&since, &kind, &top],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        };
        let top_blocked_labels = tops("label")?;
        let top_blocked_hosts = tops("host")?;
        let top_flagged_people = tops("person")?;
        let chars = bucket_chars as i32;
        let buckets = client
            .query(
                "SELECT substr(minute, 1, $2), SUM(requests)::int8, SUM(blocked)::int8, \
                 SUM(alerting)::int8 FROM event_minutes WHERE minute >= substr($1, 1, 16) \
                 GROUP BY 1 ORDER BY 1",
                &[&since, &chars],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        Ok(super::Summary {
            buckets,
            top_blocked_labels,
            top_blocked_hosts,
            top_flagged_people,
        })
    }

    fn query_inner(&mut self, q: &Query) -> Result<Vec<Event>, postgres::Error> {
        let mut clauses: Vec<String> = Vec::new();
        let mut values: Vec<String> = Vec::new();
        let mut add = |column: &str, op: &str, value: &Option<String>| {
            if let Some(v) = value {
                values.push(v.clone());
                clauses.push(format!("{column} {op} ${}", values.len()));
            }
        };
        add("user_name", "=", &q.user);
        add("client_ip", "=", &q.client_ip);
        add("time", ">=", &q.from);
        add("time", "<", &q.to);
        add("verdict", "=", &q.verdict);
        add("site", "=", &q.site);
        if let Some(label) = &q.label {
            values.push(label.clone());
            // The index covers labelled rows only; the second condition lets the planner
            // use it.
            clauses.push(format!(
                "labels @> ARRAY[${}]::text[] AND labels <> '{{}}'",
                values.len()
            ));
        }
        if q.flagged_only {
            clauses.push("flagged".to_owned());
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM events {filter} ORDER BY time DESC, id DESC LIMIT {}",
            limit_of(q)
        );
        let params: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let rows = self.client()?.query(&sql, &params)?;
        Ok(rows
            .iter()
            .map(|r| Event {
                time: r.get(0),
                request_id: r.get(1),
                client_ip: r.get(2),
                user: r.get(3),
                // The events table keeps the account; the people table names it.
                person: None,
                identified_by: String::new(),
                role: r.get(4),
                site: r.get(5),
                method: r.get(6),
                host: r.get(7),
                url: r.get(8),
                search_term: r.get(9),
                categories: split_list(r.get(10)),
                themes: split_list(r.get(11)),
                terms: split_list(r.get(12)),
                verdict: r.get(13),
                alert: r.get(14),
                sensitive: r.get(15),
                rule: r.get(17),
                reason: r.get(18),
                status: u16::try_from(r.get::<_, i32>(19)).unwrap_or(0),
                bytes: r.get::<_, Option<i64>>(20).map(|b| b as u64),
                duration_ms: r.get(21),
                decrypted: r.get(22),
                excerpt: None,
            })
            .collect())
    }

    pub fn purge(&mut self, kind: Kind, before: &str, limit: usize) -> Result<usize, Error> {
        let flagged = kind == Kind::Flagged;
        let limit = limit as i64;
        let n = self
            .client()
            .and_then(|c| {
                c.execute(
                    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE flagged = $1 \
                     AND time < $2 ORDER BY time LIMIT $3)",
                    &[&flagged, &before, &limit],
                )
            })
            .map_err(|e| Error::store("postgres", e))?;
        Ok(n as usize)
    }

    pub fn healthy(&mut self) -> bool {
        self.client()
            .and_then(|c| c.simple_query("SELECT 1"))
            .is_ok()
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("connected", &self.client.is_some())
            .finish_non_exhaustive()
    }
}
