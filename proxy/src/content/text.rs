//! Decoded bytes to the text a person reads, as they stream: the charset from the header,
//! a byte-order mark or the page's `<meta>` (encoding_rs); HTML reduced to its title,
//! headings, body text, `alt` and meta description (never scripts, styles or markup);
//! JSON to its string values; an event stream (an AI chat's answer) to the text its events
//! carry, tokens joined as they were sent.

use encoding_rs::Encoding;

/// What kind of text a body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Html,
    Plain,
    Json,
    EventStream,
}

impl Kind {
    /// The kind of a `Content-Type` (without parameters), if it is one that is read.
    pub fn of(mime: &str) -> Option<Kind> {
        let essence = mime
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        Some(match essence.as_str() {
            // No type: a browser sniffs, and shows a page (binary is caught by the reader).
            "" | "text/html" | "application/xhtml+xml" | "application/xml" | "text/xml" => {
                Kind::Html
            }
            "text/plain" => Kind::Plain,
            "application/json" | "text/json" => Kind::Json,
            "text/event-stream" => Kind::EventStream,
            e if e.ends_with("+json") => Kind::Json,
            _ => return None,
        })
    }
}

/// A piece of readable text, or a break no sentence crosses.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Break,
}

/// Keys whose string values an AI chat's streamed answer carries its text in (OpenAI's
/// `content` and `v`, Anthropic's `text`, Gemini's `parts`/`text`, and common others).
const ANSWER_KEYS: &[&str] = &[
    "content",
    "text",
    "delta",
    "v",
    "parts",
    "answer",
    "response",
    "token",
    "message",
    "completion",
    "output",
    "chunk",
    "reasoning_content",
    "reasoning",
    "generated_text",
];

/// Bytes read before the charset is settled (a `<meta>` must come this early).
const SNIFF_BYTES: usize = 1024;

/// One body's reader.
pub struct TextReader {
    kind: Kind,
    declared: Option<&'static Encoding>,
    decoder: Option<encoding_rs::Decoder>,
    sniffed: Vec<u8>,
    html: Html,
    json: Json,
    /// Event stream: the line being read, and the event's data lines so far.
    line: String,
    event_data: String,
    after_cr: bool,
    decoded: String,
    pub title: String,
    /// An AI service's own answer keys, read with the common ones.
    answer_keys: Vec<String>,
}

impl std::fmt::Debug for TextReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextReader")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl TextReader {
    /// Reads these keys of an event stream's JSON as the answer too (an AI service's own,
    /// from its entry in the policy's table).
    pub fn with_answer_keys(mut self, keys: Vec<String>) -> TextReader {
        self.answer_keys = keys;
        self
    }

    /// A reader for a body of `kind` whose `Content-Type` had `charset` (if any).
    pub fn new(kind: Kind, charset: Option<&str>) -> TextReader {
        TextReader {
            kind,
            declared: charset.and_then(|c| Encoding::for_label(c.trim().as_bytes())),
            decoder: None,
            sniffed: Vec::new(),
            html: Html::default(),
            json: Json::default(),
            line: String::new(),
            event_data: String::new(),
            after_cr: false,
            decoded: String::new(),
            title: String::new(),
            answer_keys: Vec::new(),
        }
    }

    /// Reads decoded body bytes; the text found goes to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut dyn FnMut(Piece<'_>)) {
        if self.decoder.is_none() {
            self.sniffed.extend_from_slice(bytes);
            if self.sniffed.len() < SNIFF_BYTES {
                return;
            }
            let sniffed = std::mem::take(&mut self.sniffed);
            self.start_decoder(&sniffed);
            self.decode(&sniffed, false, out);
            return;
        }
        self.decode(bytes, false, out);
    }

    /// The end of the body.
    pub fn finish(&mut self, out: &mut dyn FnMut(Piece<'_>)) {
        if self.decoder.is_none() {
            let sniffed = std::mem::take(&mut self.sniffed);
            self.start_decoder(&sniffed);
            self.decode(&sniffed, true, out);
        } else {
            self.decode(&[], true, out);
        }
        if self.kind == Kind::Json && self.json.ended {
            // A body that is one bare string (`"how do I ..."`): its value ends with it.
            self.json.ended = false;
            self.json.value(None, out);
        }
        if self.kind == Kind::EventStream {
            let line = std::mem::take(&mut self.line);
            self.event_line(&line, out);
            self.event_line("", out);
        }
        out(Piece::Break);
    }

    fn start_decoder(&mut self, head: &[u8]) {
        let encoding = Encoding::for_bom(head)
            .map(|(e, _)| e)
            .or(self.declared)
            .or_else(|| {
                (self.kind == Kind::Html)
                    .then(|| meta_charset(head))
                    .flatten()
            })
            .unwrap_or(encoding_rs::UTF_8);
        // A page that says UTF-16 in ASCII cannot be: the HTML standard reads it as UTF-8.
        self.decoder = Some(encoding.new_decoder_with_bom_removal());
    }

    fn decode(&mut self, bytes: &[u8], last: bool, out: &mut dyn FnMut(Piece<'_>)) {
        let Some(decoder) = &mut self.decoder else {
            return;
        };
        let mut text = std::mem::take(&mut self.decoded);
        text.clear();
        if let Some(room) = decoder.max_utf8_buffer_length(bytes.len()) {
            text.reserve(room);
        }
        let _ = decoder.decode_to_string(bytes, &mut text, last);
        match self.kind {
            Kind::Html => self.html.read(&text, &mut self.title, out),
            Kind::Plain => out(Piece::Text(&text)),
            Kind::Json => self.json.read(&text, None, out),
            Kind::EventStream => {
                // Lines end with LF, CRLF or a lone CR (all three are the format's); the LF
                // of a CRLF cut between two chunks is still one line end.
                for c in text.chars() {
                    let ends = match c {
                        '\r' => true,
                        '\n' => !self.after_cr,
                        _ => false,
                    };
                    self.after_cr = c == '\r';
                    if ends {
                        let line = std::mem::take(&mut self.line);
                        self.event_line(&line, out);
                    } else if c != '\n' && self.line.len() < 64 * 1024 {
                        self.line.push(c);
                    }
                }
            }
        }
        text.shrink_to(64 * 1024);
        self.decoded = text;
    }

    /// One line of an event stream: its `data:` is JSON (read for the answer's keys) or
    /// plain text.
    fn event_line(&mut self, line: &str, out: &mut dyn FnMut(Piece<'_>)) {
        if line.is_empty() {
            // A blank line ends the event: its data lines, joined, are read.
            let data = std::mem::take(&mut self.event_data);
            if !data.is_empty() {
                self.event_data_read(&data, out);
            }
            return;
        }
        let Some(data) = line.strip_prefix("data:") else {
            return;
        };
        let data = data.strip_prefix(' ').unwrap_or(data);
        if !self.event_data.is_empty() {
            self.event_data.push('\n');
        }
        if self.event_data.len() < 256 * 1024 {
            self.event_data.push_str(data);
        }
    }

    /// One event's data: JSON (read for the answer's keys) or plain text.
    fn event_data_read(&mut self, data: &str, out: &mut dyn FnMut(Piece<'_>)) {
        if data.trim() == "[DONE]" {
            out(Piece::Break);
        } else if data.trim_start().starts_with(['{', '[']) {
            self.json = Json::default();
            self.json.read(data, Some(&self.answer_keys), out);
        } else {
            out(Piece::Text(data));
        }
    }
}

/// The charset a page's first bytes declare in a `<meta>`.
fn meta_charset(head: &[u8]) -> Option<&'static Encoding> {
    // Only the first bytes: a `<meta>` later does not count, and a long head of `<meta`
    // without `>` must not cost a scan per tag.
    let head = &head[..head.len().min(SNIFF_BYTES)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("<meta") {
        rest = &rest[at + 5..];
        let Some(close) = rest.find('>') else {
            break;
        };
        let tag = &rest[..close];
        if let Some(c) = tag.find("charset") {
            let value = tag[c + 7..]
                .trim_start_matches([' ', '='])
                .trim_start_matches(['"', '\'']);
            let end = value
                .find(|ch: char| {
                    ch == '"' || ch == '\'' || ch == ';' || ch.is_whitespace() || ch == '/'
                })
                .unwrap_or(value.len());
            if let Some(e) = Encoding::for_label(&value.as_bytes()[..end]) {
                // UTF-16 declared in an ASCII-compatible page is read as UTF-8.
                return Some(
                    if e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE {
                        encoding_rs::UTF_8
                    } else {
                        e
                    },
                );
            }
        }
    }
    None
}

/// Elements whose content is not read (scripts, styles, templates, embedded images).
const SKIPPED: &[&str] = &["script", "style", "template", "svg", "noscript", "math"];

/// Elements that end a block of text: a sentence never runs across them.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "td",
    "th",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "aside",
    "main",
    "blockquote",
    "pre",
    "hr",
    "title",
    "form",
    "option",
    "button",
    "dt",
    "dd",
    "figcaption",
    "label",
    "textarea",
    "body",
    "head",
    "html",
    "img",
];

/// The longest tag read (attributes included); a longer one is read up to this.
const MAX_TAG: usize = 4096;

#[derive(Debug, Default)]
enum HtmlState {
    #[default]
    Text,
    /// After `<`: a tag if a letter, `/` or `!` follows.
    Open,
    Tag,
    /// Inside `<!-- ... -->`.
    Comment,
    /// Inside an element that is skipped, until its end tag.
    Skipped,
    /// After `&`.
    Entity,
}

#[derive(Debug, Default)]
struct Html {
    state: HtmlState,
    tag: String,
    entity: String,
    /// The element being skipped.
    skipping: &'static str,
    in_title: bool,
    /// Characters read inside the comment so far.
    comment_len: usize,
    /// Text waiting to be handed on (one call's worth).
    text: String,
}

impl Html {
    fn read(&mut self, input: &str, title: &mut String, out: &mut dyn FnMut(Piece<'_>)) {
        for c in input.chars() {
            match self.state {
                HtmlState::Text => self.text_state(c, title),
                HtmlState::Open => {
                    if c.is_ascii_alphabetic() || c == '/' || c == '!' {
                        self.tag.clear();
                        self.tag.push(c);
                        self.state = HtmlState::Tag;
                    } else {
                        self.text_char('<', title);
                        self.state = HtmlState::Text;
                        if c == '<' {
                            self.state = HtmlState::Open;
                        } else {
                            self.text_char(c, title);
                        }
                    }
                }
                HtmlState::Tag => {
                    if c == '>' {
                        self.state = HtmlState::Text;
                        let tag = std::mem::take(&mut self.tag);
                        self.end_tag(&tag, out);
                        self.tag = tag;
                    } else if self.tag.len() < MAX_TAG {
                        self.tag.push(c);
                        if self.tag == "!--" {
                            self.tag.clear();
                            self.comment_len = 0;
                            self.state = HtmlState::Comment;
                        }
                    }
                }
                HtmlState::Comment => {
                    // Ends at `-->` or `--!>`; `<!-->` and `<!--->` end at once (as a
                    // browser reads them).
                    self.tag.push(c);
                    self.comment_len += 1;
                    let at_once = self.comment_len <= 2 && (self.tag == ">" || self.tag == "->");
                    if self.tag.len() > 4 {
                        let cut = self.tag.len() - 4;
                        let cut = (cut..=self.tag.len())
                            .find(|&i| self.tag.is_char_boundary(i))
                            .unwrap_or(0);
                        self.tag.drain(..cut);
                    }
                    if at_once || self.tag.ends_with("-->") || self.tag.ends_with("--!>") {
                        self.tag.clear();
                        self.state = HtmlState::Text;
                    }
                }
                HtmlState::Skipped => {
                    // Only the last bytes are kept: enough to see `</script`.
                    self.tag.push(c);
                    let close = 2 + self.skipping.len();
                    if self.tag.len() > 4 * close {
                        let cut = self.tag.len() - close;
                        let cut = (cut..=self.tag.len())
                            .find(|&i| self.tag.is_char_boundary(i))
                            .unwrap_or(0);
                        self.tag.drain(..cut);
                    }
                    let tail = self.tag.as_bytes();
                    let ends = tail.len() >= close
                        && tail[tail.len() - close..tail.len() - close + 2] == *b"</"
                        && tail[tail.len() - close + 2..]
                            .eq_ignore_ascii_case(self.skipping.as_bytes());
                    if ends {
                        self.tag.clear();
                        self.tag.push('/');
                        self.tag.push_str(self.skipping);
                        self.state = HtmlState::Tag;
                    }
                }
                HtmlState::Entity => {
                    let part_of = match self.entity.strip_prefix('#') {
                        None => c.is_ascii_alphanumeric() || (c == '#' && self.entity.is_empty()),
                        Some("") => c.is_ascii_digit() || c == 'x' || c == 'X',
                        Some(n) if n.starts_with(['x', 'X']) => c.is_ascii_hexdigit(),
                        Some(_) => c.is_ascii_digit(),
                    };
                    if part_of && self.entity.len() < 32 {
                        self.entity.push(c);
                        continue;
                    }
                    let entity = std::mem::take(&mut self.entity);
                    self.state = HtmlState::Text;
                    let numeric = entity.starts_with('#');
                    match entity_char(&entity) {
                        // A numeric reference needs no `;` (`&#107ill` is "kill" to a
                        // browser).
                        Some(ch) if c == ';' || numeric => {
                            self.text_char(ch, title);
                            if c != ';' {
                                self.text_state(c, title);
                            }
                        }
                        // A named reference not known here stands for a character the
                        // browser shows (`&ZeroWidthSpace;`): nothing that splits a word.
                        None if c == ';' && !entity.is_empty() && !numeric => {}
                        _ => {
                            self.text_char('&', title);
                            for ch in entity.chars() {
                                self.text_char(ch, title);
                            }
                            self.text_state(c, title);
                        }
                    }
                }
            }
        }
        if !self.text.is_empty() {
            out(Piece::Text(&self.text));
            self.text.clear();
        }
    }

    /// A character read as text (`<` and `&` start a tag or a reference).
    fn text_state(&mut self, c: char, title: &mut String) {
        match c {
            '<' => self.state = HtmlState::Open,
            '&' => {
                self.entity.clear();
                self.state = HtmlState::Entity;
            }
            c => self.text_char(c, title),
        }
    }

    fn text_char(&mut self, c: char, title: &mut String) {
        if self.in_title && title.len() < 300 {
            title.push(c);
        }
        self.text.push(c);
    }

    /// A whole tag (`<` and `>` removed) was read.
    fn end_tag(&mut self, tag: &str, out: &mut dyn FnMut(Piece<'_>)) {
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let flush = |html: &mut Html, out: &mut dyn FnMut(Piece<'_>)| {
            if !html.text.is_empty() {
                out(Piece::Text(&html.text));
                html.text.clear();
            }
        };
        if !closing {
            if let Some(skipped) = SKIPPED.iter().find(|s| **s == name) {
                if !tag.ends_with('/') {
                    self.skipping = skipped;
                    self.state = HtmlState::Skipped;
                    self.tag.clear();
                }
                return;
            }
        }
        if name == "title" {
            self.in_title = !closing;
        }
        if BLOCKS.contains(&name.as_str()) {
            flush(self, out);
            out(Piece::Break);
        } else {
            // Inline elements join the words around them (`sui<b>cide</b>`).
        }
        if closing {
            return;
        }
        let said = match name.as_str() {
            "img" | "area" => attribute(tag, "alt"),
            "meta" => {
                let named = attribute(tag, "name")
                    .or_else(|| attribute(tag, "property"))
                    .map(|n| n.to_ascii_lowercase());
                match named.as_deref() {
                    Some("description" | "og:description" | "og:title" | "keywords") => {
                        attribute(tag, "content")
                    }
                    _ => None,
                }
            }
            "input" => attribute(tag, "placeholder"),
            _ => None,
        };
        if let Some(said) = said {
            flush(self, out);
            out(Piece::Text(&decode_entities(&said)));
            out(Piece::Break);
        }
    }
}

/// An attribute's value in a tag's text.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(name) {
        let start = from + at;
        from = start + name.len();
        let before_ok = lower[..start]
            .chars()
            .next_back()
            .is_some_and(char::is_whitespace);
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value_at = tag.len() - rest.len() + 1;
        let value = tag[value_at..].trim_start();
        let (quoted, body) = match value.chars().next() {
            Some(q @ ('"' | '\'')) => (Some(q), &value[1..]),
            _ => (None, value),
        };
        let end = match quoted {
            Some(q) => body.find(q).unwrap_or(body.len()),
            None => body.find(char::is_whitespace).unwrap_or(body.len()),
        };
        return Some(body[..end].to_owned());
    }
    None
}

fn entity_char(entity: &str) -> Option<char> {
    if let Some(num) = entity.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        // A control character written as a reference is shown as nothing: read as a space
        // (it must not make a page look binary).
        return char::from_u32(code).map(|c| if c.is_control() { ' ' } else { c });
    }
    Some(match entity {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "shy" => '\u{ad}',
        "rsquo" | "lsquo" => '\'',
        "rdquo" | "ldquo" => '"',
        "hellip" => '…',
        "mdash" | "ndash" => '-',
        _ => return None,
    })
}

/// Entities in an attribute's value.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match rest.find(';').filter(|&e| e <= 10) {
            Some(end) => match entity_char(&rest[1..end]) {
                Some(c) => {
                    out.push(c);
                    rest = &rest[end + 1..];
                }
                None => {
                    out.push('&');
                    rest = &rest[1..];
                }
            },
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Default, PartialEq, Eq)]
enum JsonState {
    #[default]
    Outside,
    InString,
    Escape,
    /// `\u` and the hex digits so far.
    Unicode,
}

/// String values of a JSON text, as it streams.
#[derive(Debug, Default)]
struct Json {
    state: JsonState,
    string: String,
    hex: String,
    /// A string ended; whether it is a key is known at the next non-space character.
    ended: bool,
    key: String,
}

impl Json {
    /// Reads JSON text. With `keys`, only the values of the answer's keys (the common
    /// ones and these) are handed on, joined as they come (an answer streamed token by
    /// token); without, every value, each a block of its own.
    fn read(&mut self, input: &str, keys: Option<&[String]>, out: &mut dyn FnMut(Piece<'_>)) {
        for c in input.chars() {
            match self.state {
                JsonState::Outside => {
                    if self.ended && !c.is_whitespace() {
                        self.ended = false;
                        if c == ':' {
                            self.key = std::mem::take(&mut self.string);
                            continue;
                        }
                        self.value(keys, out);
                    }
                    if c == '"' {
                        self.string.clear();
                        self.state = JsonState::InString;
                    }
                }
                JsonState::InString => match c {
                    '"' => {
                        self.state = JsonState::Outside;
                        self.ended = true;
                    }
                    '\\' => self.state = JsonState::Escape,
                    c if self.string.len() < 64 * 1024 => self.string.push(c),
                    _ => {}
                },
                JsonState::Escape => {
                    self.state = JsonState::InString;
                    let ch = match c {
                        'n' | 'r' | 't' => ' ',
                        'u' => {
                            self.hex.clear();
                            self.state = JsonState::Unicode;
                            continue;
                        }
                        other => other,
                    };
                    self.string.push(ch);
                }
                JsonState::Unicode => {
                    if !c.is_ascii_hexdigit() {
                        // Not an escape after all: the character is read as it is (a
                        // malformed `\u` must not stop the reading of everything after it).
                        self.state = JsonState::InString;
                        self.string.push(c);
                        continue;
                    }
                    self.hex.push(c);
                    if self.hex.len() >= 4 {
                        self.state = JsonState::InString;
                        if let Some(ch) = u32::from_str_radix(&self.hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                        {
                            self.string.push(ch);
                        }
                    }
                }
            }
        }
        if self.ended && keys.is_some() {
            // An event's data ends with its value.
            self.ended = false;
            self.value(keys, out);
        }
    }

    fn value(&mut self, keys: Option<&[String]>, out: &mut dyn FnMut(Piece<'_>)) {
        let value = std::mem::take(&mut self.string);
        match keys {
            Some(extra) => {
                let key = self.key.as_str();
                if ANSWER_KEYS.contains(&key) || extra.iter().any(|k| k == key) {
                    out(Piece::Text(&value));
                }
            }
            None => {
                out(Piece::Text(&value));
                out(Piece::Break);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn read(kind: Kind, charset: Option<&str>, body: &[u8], piece: usize) -> (String, String) {
        let mut r = TextReader::new(kind, charset);
        let mut text = String::new();
        let mut sink = |p: Piece<'_>| match p {
            Piece::Text(t) => text.push_str(t),
            Piece::Break => text.push_str(" | "),
        };
        for chunk in body.chunks(piece) {
            r.push(chunk, &mut sink);
        }
        r.finish(&mut sink);
        let words: Vec<&str> = text.split_whitespace().collect();
        (words.join(" "), r.title.clone())
    }

    #[test]
    fn html_is_read_as_a_person_reads_it() {
        let page = b"<!doctype html><html><head><title>How &amp; why</title>\
            <meta name=\"description\" content=\"A page about &quot;things&quot;\">\
            <style>p { color: red } .suicide {}</style><script>var kill = 'myself';</script>\
            </head><body><h1>Heading</h1><p>sui<b>cide</b> is spelt here, 3 < 4.</p>\
            <!-- a comment with words --><img src=x alt='a picture'><p>Last</p></body></html>";
        for piece in [1, 3, 7, 1000] {
            let (text, title) = read(Kind::Html, None, page, piece);
            assert_eq!(title, "How & why", "piece {piece}");
            assert!(text.contains("suicide is spelt here, 3 < 4."), "{text}");
            assert!(text.contains("A page about \"things\""), "{text}");
            assert!(text.contains("a picture"), "{text}");
            assert!(
                !text.contains("color") && !text.contains("var kill"),
                "{text}"
            );
            assert!(!text.contains("comment"), "{text}");
            assert!(text.contains("| Heading |"), "{text}");
        }
        // Found by attacking: references without `;`, unknown named references, and the
        // comment forms a browser ends early.
        let tricks =
            b"<p>&#107ill my&ZeroWidthSpace;self</p><!--><p>shown</p><!---><p>also shown</p>\
            <!-- hidden --!><p>after</p>";
        for piece in [1, 5, 1000] {
            let (text, _) = read(Kind::Html, None, tricks, piece);
            assert!(text.contains("kill myself"), "{piece}: {text}");
            assert!(
                text.contains("shown") && text.contains("also shown"),
                "{text}"
            );
            assert!(text.contains("after") && !text.contains("hidden"), "{text}");
        }
    }

    #[test]
    fn charsets_from_header_bom_and_meta() {
        let (cp1252, _, _) = encoding_rs::WINDOWS_1252.encode("café – naïve");
        let (text, _) = read(Kind::Plain, Some("windows-1252"), &cp1252, 2);
        assert_eq!(text, "café – naïve |");
        let mut meta = b"<html><head><meta charset=\"windows-1252\"></head><body>".to_vec();
        meta.extend_from_slice(&cp1252);
        let (text, _) = read(Kind::Html, None, &meta, 5);
        assert!(text.contains("café – naïve"), "{text}");
        let mut utf16 = vec![0xff, 0xfe];
        for u in "self harm".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        let (text, _) = read(Kind::Plain, None, &utf16, 3);
        assert_eq!(text, "self harm |");
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("自殺の方法");
        let (text, _) = read(Kind::Plain, Some("shift_jis"), &sjis, 1);
        assert_eq!(text, "自殺の方法 |");
    }

    #[test]
    fn an_event_stream_answer_is_joined_token_by_token() {
        let sse = b"event: delta\ndata: {\"choices\":[{\"delta\":{\"content\":\"Here is how to \"}}]}\n\n\
            data: {\"choices\":[{\"delta\":{\"content\":\"kill your\"}}]}\n\n\
            data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"self quickly\"}}\n\n\
            data: [DONE]\n\n";
        // Found by attacking: bare CR line ends, and one event's JSON over two data lines.
        let cr = String::from_utf8_lossy(sse).replace('\n', "\r");
        let split = b"data: {\"choices\":[{\"delta\":\ndata: {\"content\":\"Here is how to kill yourself quickly\"}}]}\n\n";
        for piece in [1, 4, 1000] {
            // CRLF between the data lines of one event is one line end, not a blank line.
            let split_crlf = String::from_utf8_lossy(split).replace('\n', "\r\n");
            for other in [cr.as_bytes(), &split[..], split_crlf.as_bytes()] {
                let (text, _) = read(Kind::EventStream, None, other, piece);
                assert!(
                    text.contains("Here is how to kill yourself quickly"),
                    "{piece}: {text}"
                );
            }
            let (text, _) = read(Kind::EventStream, None, sse, piece);
            assert!(
                text.contains("Here is how to kill yourself quickly"),
                "{piece}: {text}"
            );
            assert!(
                !text.contains("choices") && !text.contains("text_delta"),
                "{text}"
            );
        }
    }

    #[test]
    fn json_values_are_read_and_keys_are_not() {
        let body =
            br#"{"title":"Forum","posts":[{"body":"I want to \u0064ie tonight\nhelp"}],"n":3}"#;
        let (text, _) = read(Kind::Json, None, body, 2);
        assert_eq!(text, "Forum | I want to die tonight help | |");
        // Found by attacking: a body that is one bare string was never read.
        let (text, _) = read(Kind::Json, None, br#""how do I kill myself""#, 3);
        assert_eq!(text, "how do I kill myself | |");
        // Found by review: a malformed `\u` escape stopped all further reading.
        let (text, _) = read(
            Kind::Json,
            None,
            "{\"x\":\"\\u€€\",\"prompt\":\"how do I kill myself\"}".as_bytes(),
            2,
        );
        assert!(text.contains("how do I kill myself"), "{text}");
    }

    #[test]
    fn types_that_are_read() {
        assert_eq!(Kind::of("text/html; charset=utf-8"), Some(Kind::Html));
        assert_eq!(Kind::of("application/vnd.api+json"), Some(Kind::Json));
        assert_eq!(Kind::of("image/png"), None);
        assert_eq!(
            Kind::of(""),
            Some(Kind::Html),
            "no type: read as a browser sniffs it"
        );
        assert_eq!(Kind::of("application/pdf"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Whatever the bytes and wherever the chunks are cut, each kind of reader gives
        /// the text it gives for the whole body, and never panics.
        #[test]
        fn readers_give_the_same_text_however_the_body_is_cut(
            body in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::any::<u8>(),
                proptest::sample::select(b"<>&;#!-/ \r\n:{}[]\"\\datpscriptx".to_vec()),
            ], 0..600),
            cuts in proptest::collection::vec(0usize..600, 0..6),
            kind in proptest::sample::select(vec![Kind::Html, Kind::Plain, Kind::Json, Kind::EventStream]),
        ) {
            let (whole, title) = read(kind, None, &body, body.len().max(1));
            let mut ends: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
            ends.push(body.len());
            ends.sort_unstable();
            let mut r = TextReader::new(kind, None);
            let mut text = String::new();
            let mut sink = |p: Piece<'_>| match p {
                Piece::Text(t) => text.push_str(t),
                Piece::Break => text.push_str(" | "),
            };
            let mut from = 0;
            for end in ends {
                r.push(&body[from..end], &mut sink);
                from = end;
            }
            r.finish(&mut sink);
            let words: Vec<&str> = text.split_whitespace().collect();
            proptest::prop_assert_eq!(words.join(" "), whole);
            proptest::prop_assert_eq!(r.title.clone(), title);
        }
    }
}
