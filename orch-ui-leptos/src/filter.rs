//! What the event stream shows: category toggles, agent chips and a search box that takes a regular
//! expression (case-insensitive), or plain text when the expression does not parse. The state also
//! round-trips through the page URL's query, so a filtered view can be reloaded or shared.

use std::collections::BTreeSet;

use orch_core::wire::Id;

use crate::buffer::{Class, Row};

/// The stream's filter as the person set it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Classes shown; empty shows every class.
    pub classes: BTreeSet<Class>,
    /// Agents shown; empty shows every agent's (and agent-less) events.
    pub agents: BTreeSet<Id>,
    /// The search text.
    pub query: String,
}

/// How the search text is matched.
#[derive(Debug, Clone)]
enum Search {
    Everything,
    Regex(re::Regex),
    Text(String),
}

/// The search's regular expressions: the browser's own `RegExp` in the page (no regex engine in the
/// bundle), `regex-lite` where the logic is tested natively. Both are compiled case-insensitive; the
/// syntax they share (classes, groups, alternation, repetition, anchors) matches alike.
#[cfg(target_arch = "wasm32")]
mod re {
    use wasm_bindgen::{JsCast, JsValue};

    /// A compiled `RegExp`.
    #[derive(Debug, Clone)]
    pub struct Regex(js_sys::RegExp);

    impl Regex {
        /// Compiles `pattern` (flag `i`); the error is the browser's message.
        pub fn new(pattern: &str) -> Result<Regex, String> {
            let message = |e: JsValue| {
                e.dyn_ref::<js_sys::Error>().map_or_else(|| "not a regular expression".into(), |e| e.message().into())
            };
            // Through `Reflect`, so that a syntax error is a value here rather than a thrown exception.
            let ctor: js_sys::Function = js_sys::Reflect::get(&js_sys::global(), &"RegExp".into())
                .map_err(message)?
                .dyn_into()
                .map_err(|_| "no RegExp in this browser".to_string())?;
            let args = js_sys::Array::of2(&pattern.into(), &"i".into());
            js_sys::Reflect::construct(&ctor, &args).map(|r| Regex(r.unchecked_into())).map_err(message)
        }

        /// Whether it matches somewhere in `text`.
        pub fn is_match(&self, text: &str) -> bool {
            self.0.test(text)
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod re {
    /// A compiled `regex-lite` expression.
    #[derive(Debug, Clone)]
    pub struct Regex(regex_lite::Regex);

    impl Regex {
        /// Compiles `pattern`, case-insensitive; the error is the last line of `regex-lite`'s message.
        pub fn new(pattern: &str) -> Result<Regex, String> {
            regex_lite::RegexBuilder::new(pattern)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map(Regex)
                .map_err(|e| e.to_string().lines().last().unwrap_or_default().trim().to_string())
        }

        /// Whether it matches somewhere in `text`.
        pub fn is_match(&self, text: &str) -> bool {
            self.0.is_match(text)
        }
    }
}

/// A compiled [`Filter`].
#[derive(Debug, Clone)]
pub struct Matcher {
    classes: BTreeSet<Class>,
    agents: BTreeSet<Id>,
    search: Search,
    /// Why the search text is not a valid regular expression (it is then matched as plain text).
    pub error: Option<String>,
}

/// Longest regex source accepted (longer is matched as text).
const MAX_PATTERN: usize = 500;

impl Filter {
    /// Toggles one class.
    pub fn toggle_class(&mut self, class: Class) {
        if !self.classes.remove(&class) {
            self.classes.insert(class);
        }
    }

    /// Toggles one agent's chip.
    pub fn toggle_agent(&mut self, agent: Id) {
        if !self.agents.remove(&agent) {
            self.agents.insert(agent);
        }
    }

    /// Compiles the search.
    pub fn compile(&self) -> Matcher {
        let q = self.query.trim();
        let (search, error) = if q.is_empty() {
            (Search::Everything, None)
        } else if q.len() > MAX_PATTERN {
            (Search::Text(q.to_lowercase()), Some(format!("longer than {MAX_PATTERN} characters: matched as text")))
        } else {
            match re::Regex::new(q) {
                Ok(re) => (Search::Regex(re), None),
                Err(why) => (Search::Text(q.to_lowercase()), Some(format!("invalid regex ({why}): matched as text"))),
            }
        };
        Matcher { classes: self.classes.clone(), agents: self.agents.clone(), search, error }
    }

    /// The filter as URL query parameters (`cat=tool,hook&agent=ID&q=TEXT`), empty when nothing is set.
    pub fn to_query(&self) -> String {
        let mut parts = Vec::new();
        if !self.classes.is_empty() {
            let names: Vec<&str> = self.classes.iter().map(|c| c.name()).collect();
            parts.push(format!("cat={}", names.join(",")));
        }
        if !self.agents.is_empty() {
            let ids: Vec<String> = self.agents.iter().map(Id::to_string).collect();
            parts.push(format!("agent={}", ids.join(",")));
        }
        if !self.query.is_empty() {
            parts.push(format!("q={}", encode(&self.query)));
        }
        parts.join("&")
    }

    /// Reads [`Filter::to_query`]'s output (a leading `?` is fine; unknown parts are ignored).
    pub fn from_query(query: &str) -> Filter {
        let mut f = Filter::default();
        for pair in query.trim_start_matches('?').split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "cat" => f.classes = v.split(',').filter_map(Class::parse).collect(),
                "agent" => f.agents = v.split(',').filter_map(|s| s.parse().ok()).collect(),
                "q" => f.query = decode(v),
                _ => {}
            }
        }
        f
    }
}

impl Matcher {
    /// Whether the stream shows `row`.
    pub fn matches(&self, row: &Row) -> bool {
        (self.classes.is_empty() || self.classes.contains(&row.class))
            && (self.agents.is_empty() || row.agent_id.is_some_and(|a| self.agents.contains(&a)))
            && match &self.search {
                Search::Everything => true,
                Search::Regex(re) => re.is_match(&row.haystack),
                Search::Text(t) => row.haystack.contains(t.as_str()),
            }
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes percent-encoding (and `+` as a space); malformed escapes are kept as they are.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::tests::{record, text};
    use orch_core::wire::Event;

    fn row(seq: u64, event: Event, agent: Option<Id>, name: &str) -> Row {
        let mut r = record(seq, event);
        r.keys.agent_id = agent;
        Row::new(r, name)
    }

    #[test]
    fn classes_combine_with_or_and_agents_narrow() {
        let alice = Id::from_u128(1);
        let bob = Id::from_u128(2);
        let rows = [
            row(1, Event::Text { text: "hello".into() }, Some(alice), "alice"),
            row(2, Event::Thinking { thinking: "hmm".into(), signature: None }, Some(bob), "bob"),
            Row::new(text(3, "no agent"), ""),
        ];
        let mut f = Filter::default();
        assert_eq!(rows.iter().filter(|r| f.compile().matches(r)).count(), 3);
        f.toggle_class(Class::Response);
        f.toggle_class(Class::Thinking);
        assert_eq!(rows.iter().filter(|r| f.compile().matches(r)).count(), 3);
        f.toggle_class(Class::Thinking);
        assert_eq!(rows.iter().filter(|r| f.compile().matches(r)).count(), 2);
        f.toggle_agent(alice);
        let m = f.compile();
        let shown: Vec<u64> = rows.iter().filter(|r| m.matches(r)).map(|r| r.seq).collect();
        assert_eq!(shown, [1]);
    }

    #[test]
    fn search_is_a_case_insensitive_regex_or_text_when_invalid() {
        let rows = [
            row(1, Event::Text { text: "wrote hello.py".into() }, None, ""),
            row(2, Event::Text { text: "ran (tests".into() }, None, ""),
        ];
        let mut f = Filter { query: "HELLO\\.py$".into(), ..Filter::default() };
        let m = f.compile();
        assert!(m.error.is_none());
        assert!(m.matches(&rows[0]) && !m.matches(&rows[1]));
        f.query = "(tests".into();
        let m = f.compile();
        assert!(m.error.as_deref().is_some_and(|e| e.starts_with("invalid regex")), "{:?}", m.error);
        assert!(!m.matches(&rows[0]) && m.matches(&rows[1]));
    }

    #[test]
    fn the_filter_round_trips_through_the_url() {
        let mut f = Filter { query: "a b&c=d/é".into(), ..Filter::default() };
        f.toggle_class(Class::Tool);
        f.toggle_class(Class::Hook);
        f.toggle_agent(Id::from_u128(7));
        let q = f.to_query();
        assert!(q.starts_with("cat=tool,hook&agent="), "{q}");
        assert_eq!(Filter::from_query(&format!("?{q}")), f);
        assert_eq!(Filter::from_query(""), Filter::default());
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz+x"), "%zz x");
    }
}
