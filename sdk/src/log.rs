//! Structured logging through the host (every world may log).

pub use crate::bindings::route::corral::plugin::log::Level;
use crate::bindings::route::corral::plugin::log::write as host_write;

/// Writes a line with key/value fields.
pub fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    host_write(level, message, &fields);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    write(Level::Debug, message, &[]);
}

/// Logs at info level.
pub fn info(message: &str) {
    write(Level::Info, message, &[]);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    write(Level::Warn, message, &[]);
}

/// Logs at error level.
pub fn error(message: &str) {
    write(Level::Error, message, &[]);
}
