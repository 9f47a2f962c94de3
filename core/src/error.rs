//! The crate's error type: every variant names the file, tensor or option at fault.

use std::path::PathBuf;

/// Result alias used across `stepgrpo-core`.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while loading, decoding or training.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// A directory (a checkpoint, a model) could not be written whole, on a full disk say; what
    /// stood at its path before, and every other checkpoint, are as they were.
    #[error("cannot write {path}: {cause}; nothing there was replaced, earlier checkpoints are intact")]
    WriteDir {
        /// The directory.
        path: PathBuf,
        /// The operating-system error (in the message, not a separate source).
        cause: std::io::Error,
    },
    /// A JSON file is not valid JSON or lacks a required field.
    #[error("{path}: invalid JSON")]
    Json {
        /// The file at fault.
        path: PathBuf,
        /// The parser's message, with line and column.
        source: serde_json::Error,
    },
    /// A model config names something this crate cannot build.
    #[error("{path}: {message}")]
    Config {
        /// The config file at fault.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A safetensors file is unreadable, or a tensor in it is missing or has the wrong shape or dtype.
    #[error("{path}: {message}")]
    Checkpoint {
        /// The checkpoint file (or index) at fault.
        path: PathBuf,
        /// What is wrong, naming the tensor.
        message: String,
    },
    /// The tokenizer could not be loaded or could not encode/decode.
    #[error("tokenizer {path}: {message}")]
    Tokenizer {
        /// The tokenizer file at fault.
        path: PathBuf,
        /// The tokenizers library's message.
        message: String,
    },
    /// The chat template failed to parse or render.
    #[error("chat template of {path}: {message}")]
    ChatTemplate {
        /// The tokenizer_config.json holding the template.
        path: PathBuf,
        /// The template engine's message.
        message: String,
    },
    /// A user-supplied value (option, token id, prompt) is out of range.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// The option or input at fault.
        what: String,
        /// Why it is invalid.
        message: String,
    },
    /// Training met NaN or infinite values in more steps in a row than it may skip.
    #[error("{phase}: {message}")]
    Diverged {
        /// The phase (`sft` or a method's name).
        phase: String,
        /// The steps, the value at fault and where the last good state is saved.
        message: String,
    },
    /// A tensor could not be read back from the device.
    #[error("reading tensor data back from the device: {0}")]
    Readback(String),
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid { what: what.into(), message: message.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Checkpoint { path: path.into(), message: message.into() }
    }
}

/// Reads a file, naming it in the error.
pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Reads and parses a JSON file, naming it in the error.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let bytes = read_file(path)?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Json { path: path.into(), source })
}
