//! What a plugin's outgoing HTTP may reach ([`HttpGrants`]): the origins of
//! its sidecar's `[http] allowed_hosts` (`https://api.example.com`,
//! `http://10.0.0.5:8080`, `https://*.example.org`) and the plugins of
//! `[http] plugins`, reached at `http://NAME.plugin/…`. Parsing and
//! matching only: a leaf, checked by the `wasi:http` hooks (`http_hooks`).

use std::net::IpAddr;

/// The authority suffix that names a plugin of this host:
/// `http://orders.plugin/…` calls plugin `orders`'s routes in-process.
pub const PLUGIN_AUTHORITY_SUFFIX: &str = ".plugin";

/// Which hosts one grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this name (lower case).
    Name(String),
    /// Any name ending in `.SUFFIX` (`*.example.org`), not `SUFFIX` itself.
    Subdomains(String),
    /// This address, named explicitly: the only way to reach a loopback,
    /// private, link-local or metadata address.
    Address(IpAddr),
}

/// One `[http] allowed_hosts` entry: `https://api.example.com`,
/// `http://10.0.0.5:8080`, `https://*.example.org` — a scheme, a host and
/// a port (the scheme's default when left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGrant {
    /// `http` or `https`.
    pub scheme: String,
    /// The hosts it covers.
    pub host: HostPattern,
    /// The port.
    pub port: u16,
    /// As the operator wrote it: what metrics and errors name.
    pub text: String,
}

impl HostGrant {
    /// Parses a grant, or says what is wrong with it and what would do.
    pub fn parse(text: &str) -> Result<HostGrant, String> {
        let bad = |why: &str| {
            Err(format!(
                "{text:?}: {why} (write `scheme://host[:port]`, e.g. \"https://api.example.com\", \
                 \"http://10.0.0.5:8080\", \"https://*.example.org\")"
            ))
        };
        let Some((scheme, rest)) = text.split_once("://") else { return bad("no scheme") };
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return bad("the scheme must be http or https"),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return bad("only a host and a port, no path, query or user");
        }
        let Some((host, port)) = split_port(authority) else { return bad("the port is not a number") };
        let port = port.unwrap_or(default_port);
        let host = host.to_ascii_lowercase();
        let pattern = if let Some(address) = parse_address(&host) {
            HostPattern::Address(address)
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if !valid_name(suffix) || !suffix.contains('.') {
                return bad("a wildcard covers the subdomains of a name of two labels or more, like *.example.org");
            }
            HostPattern::Subdomains(suffix.to_string())
        } else if valid_name(&host) {
            if host.ends_with(PLUGIN_AUTHORITY_SUFFIX) {
                return bad("NAME.plugin is how plugins call each other: grant it in [http] plugins instead");
            }
            HostPattern::Name(host)
        } else {
            return bad("the host is not a DNS name or an IP address");
        };
        Ok(HostGrant { scheme, host: pattern, port, text: text.to_string() })
    }

    /// Whether a request to `scheme://host:port` is covered (`host` lower case).
    pub fn covers(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme != scheme || self.port != port {
            return false;
        }
        match &self.host {
            HostPattern::Name(name) => name == host,
            HostPattern::Subdomains(suffix) => {
                host.strip_suffix(suffix.as_str()).is_some_and(|head| head.len() > 1 && head.ends_with('.'))
            }
            HostPattern::Address(address) => parse_address(host) == Some(*address),
        }
    }
}

/// `host[:port]` or `[v6][:port]`; `None` if a port is not a number.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((authority, None)),
    }
}

/// An IP address literal (a v6 one without its brackets).
fn parse_address(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

fn valid_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// What a plugin may reach over `wasi:http`: hosts, and other plugins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpGrants {
    /// `[http] allowed_hosts`.
    pub hosts: Vec<HostGrant>,
    /// `[http] plugins`: plugins whose routes it may call in-process.
    pub plugins: Vec<String>,
}

impl HttpGrants {
    /// The grants of a sidecar's `[http]` section.
    pub fn parse(hosts: &[String], plugins: &[String]) -> Result<HttpGrants, String> {
        let hosts = hosts.iter().map(|text| HostGrant::parse(text)).collect::<Result<Vec<_>, _>>()?;
        let plugin_name = |name: &String| {
            !name.is_empty()
                && name.len() <= 128
                && !name.starts_with('.')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        if let Some(bad) = plugins.iter().find(|name| !plugin_name(name)) {
            return Err(format!("plugins: {bad:?} is not a plugin name (letters, digits, '-', '_', '.')"));
        }
        Ok(HttpGrants { hosts, plugins: plugins.to_vec() })
    }

    /// Where a request to `uri` may go, or why it may not.
    pub fn destination(&self, uri: &http::Uri) -> Result<Destination, Denied> {
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let Some(host) = uri.host().map(str::to_ascii_lowercase) else {
            return Err(Denied::NoHost);
        };
        if let Some(plugin) = host.strip_suffix(PLUGIN_AUTHORITY_SUFFIX) {
            return match self.plugins.iter().any(|granted| granted == plugin) {
                true => Ok(Destination::Plugin(plugin.to_string())),
                false => Err(Denied::Plugin(plugin.to_string())),
            };
        }
        let port = uri.port_u16().unwrap_or(if scheme == "http" { 80 } else { 443 });
        match self.hosts.iter().find(|grant| grant.covers(&scheme, &host, port)) {
            Some(grant) => Ok(Destination::Host(grant.clone())),
            None => Err(Denied::Host(format!("{scheme}://{}", authority_text(&host, port, &scheme)))),
        }
    }
}

/// `host` or `host:port` when the port is not the scheme's default.
fn authority_text(host: &str, port: u16, scheme: &str) -> String {
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
    match (scheme, port) {
        ("http", 80) | ("https", 443) => host,
        _ => format!("{host}:{port}"),
    }
}

/// Where a granted request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Out to the network, under this grant.
    Host(HostGrant),
    /// In-process, to this plugin's routes.
    Plugin(String),
}

impl Destination {
    /// What metrics and logs call it: the grant as written, or `NAME.plugin`.
    pub fn label(&self) -> String {
        match self {
            Destination::Host(grant) => grant.text.clone(),
            Destination::Plugin(name) => format!("{name}{PLUGIN_AUTHORITY_SUFFIX}"),
        }
    }
}

/// Why a request was not let out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No grant covers `scheme://host[:port]`.
    Host(String),
    /// The plugin named is not granted.
    Plugin(String),
    /// The request names no host.
    NoHost,
}

impl Denied {
    /// What the operator would add to the sidecar `sidecar`, if anything.
    pub fn fix(&self, sidecar: &str) -> String {
        match self {
            Denied::Host(origin) => format!("to allow it, add {origin:?} to [http] allowed_hosts in {sidecar}"),
            Denied::Plugin(name) => format!("to allow it, add {name:?} to [http] plugins in {sidecar}"),
            Denied::NoHost => "the request names no host".into(),
        }
    }

    /// The destination as the guest asked for it.
    pub fn target(&self) -> String {
        match self {
            Denied::Host(origin) => origin.clone(),
            Denied::Plugin(name) => format!("{name}{PLUGIN_AUTHORITY_SUFFIX}"),
            Denied::NoHost => "(no host)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(hosts: &[&str], plugins: &[&str]) -> HttpGrants {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let plugins: Vec<String> = plugins.iter().map(|p| p.to_string()).collect();
        HttpGrants::parse(&hosts, &plugins).unwrap()
    }

    fn to(grants: &HttpGrants, uri: &str) -> Result<String, Denied> {
        grants.destination(&uri.parse().unwrap()).map(|d| d.label())
    }

    #[test]
    fn grants_cover_their_scheme_host_and_port_only() {
        let g = grants(
            &["https://api.example.com", "http://10.0.0.5:8080", "https://*.example.org", "http://[::1]:9000/"],
            &["orders"],
        );
        assert_eq!(to(&g, "https://api.example.com/v1/pay").unwrap(), "https://api.example.com");
        assert_eq!(to(&g, "https://API.example.com:443/").unwrap(), "https://api.example.com");
        assert!(to(&g, "http://api.example.com/").is_err(), "another scheme");
        assert!(to(&g, "https://api.example.com:8443/").is_err(), "another port");
        assert!(to(&g, "https://evil.api.example.com/").is_err(), "a subdomain of an exact name");
        assert!(to(&g, "https://api.example.com.evil.net/").is_err());
        assert_eq!(to(&g, "http://10.0.0.5:8080/x").unwrap(), "http://10.0.0.5:8080");
        assert!(to(&g, "http://10.0.0.5/").is_err());
        assert_eq!(to(&g, "https://a.b.example.org/").unwrap(), "https://*.example.org");
        assert!(to(&g, "https://example.org/").is_err(), "a wildcard covers subdomains only");
        assert!(to(&g, "https://badexample.org/").is_err());
        assert_eq!(to(&g, "http://[::1]:9000/").unwrap(), "http://[::1]:9000/");
        assert_eq!(to(&g, "http://orders.plugin/orders/1").unwrap(), "orders.plugin");
        assert_eq!(to(&g, "http://billing.plugin/").unwrap_err(), Denied::Plugin("billing".into()));
        let denied = to(&g, "https://pay.example.net:8443/charge").unwrap_err();
        assert_eq!(denied, Denied::Host("https://pay.example.net:8443".into()));
        assert_eq!(
            denied.fix("shop.toml"),
            "to allow it, add \"https://pay.example.net:8443\" to [http] allowed_hosts in shop.toml"
        );
    }

    #[test]
    fn bad_grants_are_refused_with_what_would_do() {
        for bad in [
            "api.example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://user@example.com",
            "https://example.com:99999",
            "https://*.com",
            "https://*",
            "https://exa mple.com",
            "http://orders.plugin",
            "https://",
        ] {
            let error = HostGrant::parse(bad).unwrap_err();
            assert!(error.contains("scheme://host[:port]"), "{bad}: {error}");
        }
        assert!(HttpGrants::parse(&[], &["no spaces please".into()]).is_err());
    }
}
