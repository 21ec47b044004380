//! The record of one request, with the fields the DfE filtering standard asks for.

use serde::{Deserialize, Serialize};

/// One request as the proxy decided it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339, UTC.
    pub time: String,
    pub request_id: String,
    pub client_ip: String,
    pub user: Option<String>,
    /// The person behind the account, from the school's directory or MIS:
    /// "Amy Pupil, Year 9, 9B".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// How the request was identified: network, login, voucher, ldap, kerberos, radius.
    #[serde(default)]
    pub identified_by: String,
    pub role: String,
    pub site: Option<String>,
    pub method: String,
    pub host: String,
    /// The URL without its query string (queries carry tokens); the search term is below.
    pub url: String,
    pub search_term: Option<String>,
    pub categories: Vec<String>,
    pub themes: Vec<String>,
    pub terms: Vec<String>,
    /// allow, log, warn or block.
    pub verdict: String,
    /// The alert severity when the policy says this decision alerts the DSL.
    pub alert: Option<String>,
    /// A decision the DSL may need to see (a log/alert rule fired, a warning was passed).
    pub sensitive: bool,
    pub rule: String,
    pub reason: String,
    pub status: u16,
    pub bytes: Option<u64>,
    pub duration_ms: f64,
    pub decrypted: bool,
    /// For a hit on a page's or a chat's text: the passage that matched, with the page's
    /// title. It goes to the alert only: the traffic log and the event store keep none.
    #[serde(skip)]
    pub excerpt: Option<String>,
}

/// Appends events to `out` as JSON lines, one per event: the events log's format and the
/// spill file's, so a batch written to one can be appended to the other as it is.
pub fn write_json_lines(events: &[Event], out: &mut Vec<u8>) {
    for event in events {
        let before = out.len();
        if serde_json::to_writer(&mut *out, event).is_ok() {
            out.push(b'\n');
        } else {
            out.truncate(before);
        }
    }
}

impl Event {
    /// A flagged event is one a safeguarding rule touched: it alerted, was logged as
    /// sensitive, or matched a theme. Flagged events keep the user's identity and the
    /// longer retention.
    pub fn flagged(&self) -> bool {
        self.alert.is_some() || self.sensitive || !self.themes.is_empty()
    }

    /// Who, for people: the login when there is one, else the device address.
    pub fn who(&self) -> &str {
        self.user.as_deref().unwrap_or(&self.client_ip)
    }
}
