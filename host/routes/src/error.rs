//! Why the table refused a route: [`RouteError`], naming the routes involved.

/// Why a route was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The pattern cannot be parsed.
    #[error("route pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The pattern is under a prefix the table reserves.
    #[error("route {route} is under /{prefix}/, which the host reserves for {purpose}")]
    Reserved {
        /// The route refused.
        route: Box<RouteRef>,
        /// The reserved first segment.
        prefix: String,
        /// What the host serves there.
        purpose: String,
    },
    /// Another owner's route matches the same requests.
    #[error("route {route} conflicts with {other}")]
    Conflict {
        /// The route refused.
        route: Box<RouteRef>,
        /// The route already in the table.
        other: Box<RouteRef>,
    },
}

/// A route and who owns it, as errors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRef {
    /// Upper-case method or `*`.
    pub method: String,
    /// The pattern as written.
    pub pattern: String,
    /// The plugin that serves it.
    pub owner: String,
}

impl std::fmt::Display for RouteRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} of plugin {}", self.method, self.pattern, self.owner)
    }
}
