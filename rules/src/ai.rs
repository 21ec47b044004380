//! AI chat services: which hosts are which service, where a chat's prompt is posted, which
//! keys of its streamed answer carry the text; and which services a role may use.
//!
//! The built-in table ([`BUILT_IN`]) names the major services. A policy adds a service, or
//! replaces a built-in one of the same name, with `[[ai_service]]`. A role with
//! `ai_services = [...]` may use those services (their hosts are allowed even where a
//! category blocks them, and what is typed and answered is read like any page); every
//! other recognised service is blocked for it. A role without the setting is decided by the
//! categories alone (the `ai-tools` category).
//!
//! A service whose chat runs over a WebSocket (`websocket = true`) is recognised and can be
//! approved or blocked, but what is typed into it is not read: the README says so.

use crate::host::Host;
use std::collections::HashMap;

/// One AI chat service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AiService {
    /// The name roles use (`chatgpt`).
    pub name: String,
    /// The name people see (`ChatGPT`).
    pub label: String,
    /// Its hosts (each with every name below it).
    pub hosts: Vec<String>,
    /// Path prefixes of the requests that post a prompt (for the alert's wording).
    pub chat_paths: Vec<String>,
    /// JSON keys of its streamed answer that carry the answer's text (read with the
    /// common keys).
    pub answer_keys: Vec<String>,
    /// Its chat runs over a WebSocket: recognised, not read.
    pub websocket: bool,
}

/// A service's number in the compiled table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AiServiceId(pub u16);

/// A built-in service: (name, label, hosts, chat paths, answer keys, websocket).
type BuiltIn = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
    bool,
);

/// The services Gatehouse knows without configuration, as their web apps talk (2026).
pub const BUILT_IN: &[BuiltIn] = &[
    (
        "chatgpt",
        "ChatGPT",
        &["chatgpt.com", "chat.openai.com", "openai.com"],
        &[
            "/backend-api/conversation",
            "/backend-api/f/conversation",
            "/backend-anon/conversation",
        ],
        &["parts", "v", "content"],
        false,
    ),
    (
        "gemini",
        "Gemini",
        &[
            "gemini.google.com",
            "bard.google.com",
            "aistudio.google.com",
        ],
        &["/_/BardChatUi/data/"],
        &["text"],
        false,
    ),
    (
        "copilot",
        "Microsoft Copilot (personal accounts)",
        &["copilot.microsoft.com", "sydney.bing.com"],
        &["/c/api/chat", "/sydney/ChatHub"],
        &["text"],
        true,
    ),
    (
        "copilot-m365",
        "Microsoft 365 Copilot (school accounts)",
        &["m365.cloud.microsoft", "copilot.cloud.microsoft"],
        &["/chat", "/m365Copilot/"],
        &["text"],
        true,
    ),
    (
        "claude",
        "Claude",
        &["claude.ai", "anthropic.com"],
        &["/api/organizations/"],
        &["completion", "text"],
        false,
    ),
    (
        "character-ai",
        "Character.AI",
        &["character.ai", "c.ai"],
        &["/chat/"],
        &["text", "raw_content"],
        true,
    ),
    (
        "meta-ai",
        "Meta AI",
        &["meta.ai"],
        &["/api/graphql"],
        &["text", "snippet"],
        false,
    ),
    (
        "perplexity",
        "Perplexity",
        &["perplexity.ai", "pplx.ai"],
        &["/rest/sse/perplexity_ask", "/socket.io/"],
        &["answer", "text", "chunks"],
        false,
    ),
    (
        "deepseek",
        "DeepSeek",
        &["deepseek.com"],
        &["/api/v0/chat/completion"],
        &["v", "content"],
        false,
    ),
];

/// The compiled table.
#[derive(Clone, Debug, Default)]
pub struct AiServices {
    services: Vec<AiService>,
    /// Host (as listed, lower case) to its service.
    by_host: HashMap<String, AiServiceId>,
}

impl AiServices {
    /// The built-in services, then `added` (a service with a built-in name replaces it).
    /// `Err` names the service and says what is wrong.
    pub fn new(added: Vec<AiService>) -> Result<AiServices, String> {
        let mut services: Vec<AiService> = BUILT_IN
            .iter()
            .map(|&(name, label, hosts, paths, keys, websocket)| AiService {
                name: name.to_owned(),
                label: label.to_owned(),
                hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
                chat_paths: paths.iter().map(|p| (*p).to_owned()).collect(),
                answer_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
                websocket,
            })
            .collect();
        for service in added {
            match services.iter_mut().find(|s| s.name == service.name) {
                Some(s) => *s = service,
                None => services.push(service),
            }
        }
        let mut by_host = HashMap::new();
        for (i, s) in services.iter_mut().enumerate() {
            if !crate::category::valid_name(&s.name) {
                return Err(format!(
                    "{:?}: a service's name uses lower-case letters, digits and '-'",
                    s.name
                ));
            }
            if s.hosts.is_empty() {
                return Err(format!("{}: a service needs at least one host", s.name));
            }
            let id = AiServiceId(
                u16::try_from(i).map_err(|_| "more than 65,535 AI services".to_owned())?,
            );
            for h in &mut s.hosts {
                let parsed = Host::parse(h.trim().trim_start_matches("*."))
                    .ok_or_else(|| format!("{}: {h:?} is not a host name", s.name))?;
                *h = parsed.as_str().to_owned();
                if let Some(other) = by_host.insert(h.clone(), id) {
                    if other != id {
                        return Err(format!(
                            "{}: the host {h:?} is also listed for another service",
                            s.name
                        ));
                    }
                }
            }
            for p in &s.chat_paths {
                if !p.starts_with('/') {
                    return Err(format!(
                        "{}: the chat path {p:?} must start with '/'",
                        s.name
                    ));
                }
            }
        }
        Ok(AiServices { services, by_host })
    }

    /// The service `host` (normalised, lower case) belongs to: the host itself or a name
    /// above it is listed.
    pub fn lookup(&self, host: &str) -> Option<AiServiceId> {
        if self.by_host.is_empty() {
            return None;
        }
        let mut rest = host.trim_end_matches('.');
        loop {
            if let Some(&id) = self.by_host.get(rest) {
                return Some(id);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    pub fn get(&self, id: AiServiceId) -> Option<&AiService> {
        self.services.get(usize::from(id.0))
    }

    pub fn id(&self, name: &str) -> Option<AiServiceId> {
        self.services
            .iter()
            .position(|s| s.name == name)
            .and_then(|i| u16::try_from(i).ok())
            .map(AiServiceId)
    }

    pub fn all(&self) -> &[AiService] {
        &self.services
    }

    /// Whether `path` posts a prompt to the service.
    pub fn is_chat(&self, id: AiServiceId, path: &str) -> bool {
        self.get(id)
            .is_some_and(|s| s.chat_paths.iter().any(|p| path.starts_with(p.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_the_names_below_them_are_their_service() {
        let t = AiServices::new(Vec::new()).unwrap();
        let chatgpt = t.id("chatgpt").unwrap();
        assert_eq!(t.lookup("chatgpt.com"), Some(chatgpt));
        assert_eq!(t.lookup("ab.chatgpt.com"), Some(chatgpt));
        assert_eq!(t.lookup("chatgpt.com."), Some(chatgpt));
        assert_eq!(t.lookup("notchatgpt.com"), None);
        assert_eq!(t.lookup("com"), None);
        assert_eq!(t.lookup("gemini.google.com"), t.id("gemini"));
        assert_eq!(t.lookup("www.google.com"), None);
        assert!(t.is_chat(chatgpt, "/backend-api/conversation"));
        assert!(!t.is_chat(chatgpt, "/backend-api/models"));
    }

    #[test]
    fn a_school_adds_a_service_and_replaces_a_built_in_one() {
        let own = AiService {
            name: "school-bot".into(),
            label: "The school's assistant".into(),
            hosts: vec!["*.Bot.Example.Sch.UK".into()],
            chat_paths: vec!["/ask".into()],
            answer_keys: vec!["reply".into()],
            websocket: false,
        };
        let claude = AiService {
            name: "claude".into(),
            label: "Claude".into(),
            hosts: vec!["claude.ai".into()],
            chat_paths: vec![],
            answer_keys: vec![],
            websocket: false,
        };
        let t = AiServices::new(vec![own, claude]).unwrap();
        assert_eq!(t.lookup("x.bot.example.sch.uk"), t.id("school-bot"));
        assert_eq!(t.lookup("anthropic.com"), None);
        assert_eq!(t.all().len(), BUILT_IN.len() + 1);
    }

    #[test]
    fn a_broken_entry_is_named() {
        let bad = |name: &str, host: &str, path: &str| {
            AiServices::new(vec![AiService {
                name: name.into(),
                label: String::new(),
                hosts: vec![host.into()],
                chat_paths: vec![path.into()],
                answer_keys: vec![],
                websocket: false,
            }])
            .unwrap_err()
        };
        assert!(bad("Bad Name", "a.example", "/x").contains("Bad Name"));
        assert!(bad("x", "not a host", "/x").contains("not a host"));
        assert!(bad("x", "chatgpt.com", "/x").contains("another service"));
        assert!(bad("x", "a.example", "x").contains("must start with '/'"));
    }
}
