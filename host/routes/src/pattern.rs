//! Path patterns: `/orders/:id/items`, `/files/*`.

use crate::error::RouteError;

/// `(name, value)` per param a pattern captured; the rest is named `*`.
pub type Params = Vec<(String, String)>;

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Matches exactly this text.
    Literal(String),
    /// Matches any one segment and captures it under this name.
    Param(String),
    /// Matches the rest of the path (zero or more segments), captured as `*`.
    Rest,
}

impl Segment {
    /// How specific the segment is: higher wins.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 2,
            Segment::Param(_) => 1,
            Segment::Rest => 0,
        }
    }

    /// Whether two segments match exactly the same path segments.
    fn same_shape(&self, other: &Segment) -> bool {
        match (self, other) {
            (Segment::Literal(a), Segment::Literal(b)) => a == b,
            (Segment::Param(_), Segment::Param(_)) | (Segment::Rest, Segment::Rest) => true,
            _ => false,
        }
    }
}

/// A parsed path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    segments: Vec<Segment>,
}

impl Pattern {
    /// Parses a pattern. It must start with `/`; `*` may only end it and a
    /// `:` param needs a name.
    pub fn parse(pattern: &str) -> Result<Pattern, RouteError> {
        let invalid = |reason: &str| RouteError::InvalidPattern { pattern: pattern.to_string(), reason: reason.into() };
        if !pattern.starts_with('/') {
            return Err(invalid("a pattern must start with '/'"));
        }
        let parts: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let segment = match *part {
                "*" if i + 1 == parts.len() => Segment::Rest,
                "*" => return Err(invalid("'*' may only end a pattern")),
                ":" => return Err(invalid("a ':' param needs a name")),
                p => match p.strip_prefix(':') {
                    Some(name) => Segment::Param(name.to_string()),
                    None => Segment::Literal(p.to_string()),
                },
            };
            segments.push(segment);
        }
        Ok(Pattern { text: pattern.to_string(), segments })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether both patterns match exactly the same paths.
    pub(crate) fn same_shape(&self, other: &Pattern) -> bool {
        self.segments.len() == other.segments.len()
            && self.segments.iter().zip(&other.segments).all(|(a, b)| a.same_shape(b))
    }

    /// The rank of each segment, compared lexicographically: higher is more specific.
    pub(crate) fn rank(&self) -> Vec<u8> {
        self.segments.iter().map(Segment::rank).collect()
    }

    /// The params the pattern captures from `parts` (a path split on `/`,
    /// empty segments dropped), if it matches.
    pub(crate) fn capture(&self, parts: &[&str]) -> Option<Params> {
        let rest = matches!(self.segments.last(), Some(Segment::Rest));
        let fixed = if rest { self.segments.len() - 1 } else { self.segments.len() };
        if parts.len() < fixed || (!rest && parts.len() != fixed) {
            return None;
        }
        let mut params = Vec::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(literal) if parts.get(i) == Some(&literal.as_str()) => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.clone(), parts.get(i)?.to_string())),
                Segment::Rest => params.push(("*".to_string(), parts.get(i..).unwrap_or_default().join("/"))),
            }
        }
        Some(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(path: &str) -> Vec<&str> {
        path.split('/').filter(|s| !s.is_empty()).collect()
    }

    #[test]
    fn parses_and_refuses() {
        let pattern = Pattern::parse("/orders/:id/*").unwrap();
        assert_eq!(pattern.segments(), [Segment::Literal("orders".into()), Segment::Param("id".into()), Segment::Rest]);
        for bad in ["orders", "/a/*/b", "/a/:"] {
            assert!(matches!(Pattern::parse(bad), Err(RouteError::InvalidPattern { .. })), "{bad}");
        }
    }

    #[test]
    fn captures_params_and_the_rest() {
        let pattern = Pattern::parse("/files/:kind/*").unwrap();
        assert_eq!(
            pattern.capture(&parts("/files/img/a/b.png")),
            Some(vec![("kind".into(), "img".into()), ("*".into(), "a/b.png".into())])
        );
        assert_eq!(
            pattern.capture(&parts("/files/img")),
            Some(vec![("kind".into(), "img".into()), ("*".into(), String::new())])
        );
        assert_eq!(pattern.capture(&parts("/files")), None);
        assert_eq!(Pattern::parse("/a/b").unwrap().capture(&parts("/a/b/c")), None);
    }
}
