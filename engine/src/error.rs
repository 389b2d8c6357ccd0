//! The library's one error type. Binaries wrap it in `anyhow` at their edge.

use std::path::PathBuf;

/// A position in a source file, 1-based, printed as `path:line:col`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.col)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config or rule file is invalid; the message is already `path:line:col: what`.
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },

    /// Several independent problems found while checking a whole config.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<Error>),

    #[error("config: {0}")]
    Config(String),

    #[error("rule {rule}: {message}")]
    Rule { rule: String, message: String },

    #[error("source {source_name}: {message}")]
    Source {
        source_name: String,
        message: String,
    },

    #[error("store: {0}")]
    Store(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn invalid(
        path: impl Into<PathBuf>,
        line: usize,
        col: usize,
        message: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            location: Location {
                path: path.into(),
                line,
                col,
            },
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Flattens `Many` so callers can print one problem per line.
    pub fn flatten(self) -> Vec<Error> {
        match self {
            Error::Many(v) => v.into_iter().flat_map(Error::flatten).collect(),
            e => vec![e],
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Store(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Byte offset → 1-based (line, column).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}
