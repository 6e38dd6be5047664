//! Rule paths: dot-separated keys under `attributes`, with `*` (any one key
//! or array element) and `**` (any number of levels, none included),
//! matched one level at a time as the policy walks an event's attributes.

/// One segment of a path below `attributes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// This key exactly (an array element by its index, `0`, `1`, …).
    Key(String),
    /// Any key of the list, compared in lower case with `_` and `-`
    /// removed (`callbackNumbers` is `callback_numbers`): built-in rules
    /// only, for vendors that spell one field several ways.
    Loose(&'static [&'static str]),
    /// `*`: any one key or array element.
    Any,
    /// `**`: any number of levels, none included.
    AnyDepth,
}

/// One step of the walk: an object's key or an array's index.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Longest path, in segments below `attributes` (the walk's state is a
/// bit per segment).
pub(crate) const MAX_SEGMENTS: usize = 32;

/// A compiled path. Its state at a node is the set of segments matched so
/// far, as bits: bit `i` means the next segment to match is `i`; bit
/// `len` means the node matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    segments: Vec<Segment>,
}

impl Pattern {
    /// Parses a rule's path, or says what is wrong with it.
    pub(crate) fn parse(path: &str) -> Result<Pattern, String> {
        if path.is_empty() {
            return Err("is empty".to_owned());
        }
        let mut parts = path.split('.');
        if parts.next() != Some("attributes") {
            return Err("must start with `attributes.` (paths are rooted at the event's attributes)".to_owned());
        }
        let mut segments = Vec::new();
        for part in parts {
            let segment = match part {
                "" => return Err("has an empty segment (two dots in a row, or a dot at the end)".to_owned()),
                "*" => Segment::Any,
                "**" if segments.last() == Some(&Segment::AnyDepth) => return Err("has `**.**`: one `**` already matches any depth".to_owned()),
                "**" => Segment::AnyDepth,
                part if part.contains('*') => return Err(format!("segment {part:?}: `*` and `**` must be a whole segment")),
                part => Segment::Key(part.to_owned()),
            };
            segments.push(segment);
        }
        if segments.is_empty() {
            return Err("names the attributes object itself: add a key, `*` or `**` after `attributes`".to_owned());
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(format!("has {} segments below `attributes`, more than {MAX_SEGMENTS}", segments.len()));
        }
        Ok(Pattern { segments })
    }

    /// A built-in pattern.
    pub(crate) fn of(segments: Vec<Segment>) -> Pattern {
        debug_assert!(!segments.is_empty() && segments.len() <= MAX_SEGMENTS);
        Pattern { segments }
    }

    /// The literal first key, when the path starts with one: only events
    /// whose attributes hold that key can match.
    pub(crate) fn first_key(&self) -> Option<&str> {
        match self.segments.first() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    /// The state at the attributes object itself.
    pub(crate) fn start(&self) -> u64 {
        self.closure(1)
    }

    /// Whether a node in state `state` matches.
    pub(crate) fn accepts(&self, state: u64) -> bool {
        state & (1 << self.segments.len()) != 0
    }

    /// The state one level down, through `step`; 0 when nothing below can
    /// match.
    pub(crate) fn step(&self, state: u64, step: Step<'_>) -> u64 {
        let mut next = 0;
        for (i, segment) in self.segments.iter().enumerate() {
            if state & (1 << i) == 0 {
                continue;
            }
            let advances = match (segment, step) {
                (Segment::Any, _) => true,
                (Segment::AnyDepth, _) => {
                    // `**` takes this level and may take more.
                    next |= 1 << i;
                    false
                }
                (Segment::Key(key), Step::Key(name)) => key == name,
                (Segment::Key(key), Step::Index(index)) => key.parse::<usize>().is_ok_and(|k| k == index),
                (Segment::Loose(names), Step::Key(name)) => names.iter().any(|n| loose_eq(name, n)),
                (Segment::Loose(_), Step::Index(_)) => false,
            };
            if advances {
                next |= 1 << (i + 1);
            }
        }
        self.closure(next)
    }

    /// `**` may match no level: a state before one is also after it.
    fn closure(&self, mut state: u64) -> u64 {
        for (i, segment) in self.segments.iter().enumerate() {
            if *segment == Segment::AnyDepth && state & (1 << i) != 0 {
                state |= 1 << (i + 1);
            }
        }
        state
    }
}

/// `name` in lower case without `_` and `-` is `normalized`.
fn loose_eq(name: &str, normalized: &str) -> bool {
    let mut wanted = normalized.bytes();
    for b in name.bytes().filter(|b| *b != b'_' && *b != b'-') {
        if wanted.next() != Some(b.to_ascii_lowercase()) {
            return false;
        }
    }
    wanted.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(path: &str, steps: &[Step<'_>]) -> bool {
        let p = Pattern::parse(path).unwrap();
        let mut state = p.start();
        for step in steps {
            state = p.step(state, *step);
            if state == 0 {
                return false;
            }
        }
        p.accepts(state)
    }

    use Step::{Index as I, Key as K};

    #[test]
    fn keys_and_wildcards_match_by_level() {
        assert!(matches("attributes.ani", &[K("ani")]));
        assert!(!matches("attributes.ani", &[K("email")]));
        assert!(!matches("attributes.ani", &[K("ani"), K("x")]));
        assert!(matches("attributes.*", &[K("anything")]));
        assert!(!matches("attributes.*", &[K("a"), K("b")]));
        assert!(matches("attributes.sip_headers.*", &[K("sip_headers"), K("X-Caller")]));
        assert!(matches("attributes.answers.*.value", &[K("answers"), I(3), K("value")]));
        assert!(matches("attributes.urls.1", &[K("urls"), I(1)]));
        assert!(!matches("attributes.urls.1", &[K("urls"), I(0)]));
    }

    #[test]
    fn any_depth_matches_none_one_or_many_levels() {
        assert!(matches("attributes.**", &[K("a")]));
        assert!(matches("attributes.**", &[K("a"), I(0), K("b")]));
        assert!(matches("attributes.vendor.**.address", &[K("vendor"), K("address")]));
        assert!(matches("attributes.vendor.**.address", &[K("vendor"), K("CustomerEndpoint"), K("address")]));
        assert!(matches("attributes.vendor.**.address", &[K("vendor"), K("a"), I(2), K("b"), K("address")]));
        assert!(!matches("attributes.vendor.**.address", &[K("vendor"), K("address"), K("x")]));
        assert!(!matches("attributes.vendor.**.address", &[K("other"), K("address")]));
        assert!(matches("attributes.**.email", &[K("email")]));
        assert!(matches("attributes.*.**", &[K("a")]));
    }

    #[test]
    fn loose_keys_ignore_case_and_separators() {
        let p = Pattern::of(vec![Segment::Key("vendor".into()), Segment::AnyDepth, Segment::Loose(&["callbacknumbers"])]);
        for name in ["callbackNumbers", "callback_numbers", "CallbackNumbers", "callback-numbers"] {
            let state = p.step(p.step(p.start(), K("vendor")), K(name));
            assert!(p.accepts(state), "{name}");
        }
        assert!(!p.accepts(p.step(p.step(p.start(), K("vendor")), K("callbackNumber"))));
    }

    #[test]
    fn bad_paths_say_what_is_wrong() {
        for (path, what) in [
            ("", "is empty"),
            ("ani", "must start with `attributes.`"),
            ("attrs.ani", "must start with `attributes.`"),
            ("attributes", "names the attributes object itself"),
            ("attributes.", "empty segment"),
            ("attributes..ani", "empty segment"),
            ("attributes.sip*", "must be a whole segment"),
            ("attributes.***", "must be a whole segment"),
            ("attributes.**.**", "`**.**`"),
        ] {
            let error = Pattern::parse(path).unwrap_err();
            assert!(error.contains(what), "{path:?}: {error}");
        }
        let long = format!("attributes{}", ".a".repeat(MAX_SEGMENTS + 1));
        assert!(Pattern::parse(&long).unwrap_err().contains("more than 32"));
        assert!(Pattern::parse(&format!("attributes{}", ".a".repeat(MAX_SEGMENTS))).is_ok());
    }
}
